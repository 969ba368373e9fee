"""slack-sdk retry handlers that keep a message's send inside its budget (alerts/slack.py):
a 429 is slept in place only when short, a connection error retried only while it fits."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState


def header(headers: Mapping[str, Any] | None, name: str) -> str | None:
    for k, v in (headers or {}).items():
        if k.lower() == name.lower():
            return v[0] if isinstance(v, (list, tuple)) and v else v
    return None


# The longest Retry-After slept in place. slack-sdk sleeps it in the sender's thread once
# per retry, holding every page queued behind (other receivers' too) and, past the outbox
# claim, letting another sender post the same message; a longer one goes to the outbox.
MAX_INPLACE_RETRY_AFTER_S = 10.0


class ShortRateLimitRetry(RateLimitErrorRetryHandler):
    """slack-sdk's 429 handler, for a Retry-After of at most MAX_INPLACE_RETRY_AFTER_S only,
    and only while the wait and the retry fit in the message's budget (`fits`)."""

    def __init__(self, fits: Callable[[float], bool], **kw: Any) -> None:
        super().__init__(**kw)
        self._fits = fits

    def _can_retry(self, *, state: RetryState, request: HttpRequest, response: HttpResponse | None = None,
                   error: Exception | None = None) -> bool:
        if not super()._can_retry(state=state, request=request, response=response, error=error):
            return False
        raw = header(response.headers if response is not None else None, "Retry-After")
        if raw is None:
            return self._fits(2.0)  # the SDK waits about a second
        # Not an integer: the SDK's int() would raise on it; the outbox reads it instead.
        raw = str(raw).strip()
        return raw.isdigit() and int(raw) <= MAX_INPLACE_RETRY_AFTER_S and self._fits(int(raw) + 1.0)


class ConnectRetry(ConnectionErrorRetryHandler):
    """slack-sdk's connection-error retry, only while it fits in the message's budget."""

    def __init__(self, fits: Callable[[float], bool], **kw: Any) -> None:
        super().__init__(**kw)
        self._fits = fits

    def _can_retry(self, *, state: RetryState, request: HttpRequest, response: HttpResponse | None = None,
                   error: Exception | None = None) -> bool:
        return self._fits(1.0) and super()._can_retry(state=state, request=request, response=response, error=error)
