"""What every HTTP receiver shares: request signing, Retry-After, secrets read from the
environment or a file, and one bounded retry loop that maps answers to delivery results.

A call is retried in place (tenacity) on a connection error, a timeout, 408, 425, 429 and 5xx,
honouring Retry-After, at most `max_attempts` times and `max_wait_s` per wait (a longer
Retry-After ends the call at once rather than retry before it); if it still
fails the message goes back to the outbox as RETRY, due again after the outbox's own
back-off (or the backend's Retry-After, at most MAX_RETRY_AFTER_S), so an outage delays a page but never drops it.
Another 4xx is FAILED with the backend's own error text: the same request will
not succeed later, a person has to fix the config. A key that cannot be read (variable
unset, file missing) is RETRY: the message waits for the secret instead of being dropped.
No secret ever enters an error text.
"""
from __future__ import annotations

import datetime
import email.utils
import hashlib
import hmac
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception_type, retry_if_not_exception_type, stop_after_attempt
from tenacity.stop import stop_base

from alerts.outbox import CLAIM_ENDS, DeliveryResult, DeliveryStatus

# The longest a backend's (or its proxy's) Retry-After keeps a page in the outbox: a
# day-long or absurd one ("9" * 400 is inf) must not hold a page for a day, or for ever.
MAX_RETRY_AFTER_S = 300.0
# One delivery's calls together (every attempt, wait and status check) end within this, well
# inside the outbox claim (CLAIM_S, 300 s, monitor/store/outbox.py), as a Slack message's do
# (alerts/slack.py): an Opsgenie escalation is a close and a new alert, each call bounded on
# its own, and together they held the row past its claim, for another sender to page again.
DELIVERY_BUDGET_S = 240.0
# The 4xx that invite a repeat (RFC 9110/8470): 408 Request Timeout (a load balancer gave up
# waiting for the request), 425 Too Early, 429 Too Many Requests. Any other 4xx is final.
RETRYABLE_4XX = frozenset({408, 425, 429})


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """The X-Vigil-Signature value for one request: v1=<hex HMAC-SHA256(secret, f"{timestamp}.{body}")>."""
    mac = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"v1={mac}"


def retry_after_s(value: str | None, now: float) -> float | None:
    """Retry-After as seconds (RFC 9110 10.2.3): delta-seconds or an HTTP date (IMF-fixdate,
    RFC 850 or asctime, all GMT; a date past is 0); None if absent or unreadable.
    Unbounded: callers cap it to what they can afford to wait."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # asctime carries no zone; HTTP dates are always GMT
        when = when.replace(tzinfo=datetime.UTC)
    return max(0.0, when.timestamp() - now)


class SecretMissing(Exception):
    """A receiver's key or secret could not be read (unset variable, unreadable or empty file)."""


@dataclass(frozen=True)
class SecretSource:
    """Where a secret lives: an environment variable or a file, read on every call so a
    rotated secret is picked up. `what` names it in errors (never its value)."""

    what: str
    env: str | None = None
    file: Path | None = None

    def read(self) -> str:
        if self.env is not None:
            value = os.environ.get(self.env, "").strip()
            if not value:
                raise SecretMissing(f"{self.what} is missing: environment variable {self.env} is not set")
            return _checked(value, f"{self.what} in environment variable {self.env}")
        if self.file is None:
            raise SecretMissing(f"{self.what} is not configured")
        try:
            value = self.file.read_text(encoding="utf-8").strip()
        except OSError as e:
            raise SecretMissing(f"cannot read {self.what} from {self.file}: {e.strerror}") from e
        except UnicodeDecodeError:  # UTF-16 from an editor: was a traceback at start and each send
            raise SecretMissing(f"{self.what} file {self.file} is not UTF-8 text (save it as UTF-8; "
                                "its value is not shown)") from None
        if not value:
            raise SecretMissing(f"{self.what} file {self.file} is empty")
        return _checked(value, f"{self.what} from {self.file}")


def _checked(value: str, where: str) -> str:
    """`value`, unless it holds a line break or another control character: no key or token
    has one, and as a header value httpx refuses it with an error quoting the whole header,
    secret included. Named, never shown; the message waits until the secret is fixed."""
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise SecretMissing(f"{where} holds a line break or another control character; "
                            "expected one line (its value is not shown)")
    return value


@dataclass(frozen=True)
class RetrySettings:
    max_attempts: int = 3  # in one delivery; the outbox retries the message later after that
    backoff_s: float = 1.0  # doubles per attempt when the backend gives no Retry-After
    max_wait_s: float = 30.0


class Transient(Exception):
    """One attempt failed in a way the next may not."""

    def __init__(self, detail: str, retry_after: float | None = None, uncertain: bool = False) -> None:
        self.detail, self.retry_after, self.uncertain = detail, retry_after, uncertain
        super().__init__(detail)


class ClaimRunningOut(Transient):
    """The sender's claim on the message ends before one more call could: not retried here,
    the message is left to the sender that takes the row over (it may be out already)."""


class Refused(Exception):
    """The backend said no (a 4xx other than 408/425/429): retrying the same request will not help."""


# An answer's body rendered for an error text: what the backend said, shortened.
Explain = Callable[[httpx.Response], str]


def said(resp: httpx.Response) -> str:
    return " ".join(resp.text.split())[:300]


def json_object(resp: httpx.Response) -> dict[str, Any] | None:
    """The answer's body when it is a JSON object (a backend's error document), else None."""
    try:
        doc = resp.json()
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


class PastDeadline(stop_base):
    """Stop when the next attempt, after its wait, could not end by the delivery's deadline
    (one whole `timeout_s` for it): the message goes back to the outbox instead."""

    def __init__(self, caller: HttpCaller, deadline: float | None) -> None:
        self.caller, self.deadline = caller, deadline

    def __call__(self, retry_state: RetryCallState) -> bool:
        if self.deadline is None:
            return False
        wait = self.caller.wait_before(retry_state)
        return self.caller.monotonic() + wait + self.caller.timeout_s > self.deadline


class AskedToWaitLonger(stop_base):
    """Stop when the backend's Retry-After is longer than `max_wait_s`: a retry cut short to
    `max_wait_s` comes before the backend asked, so it is refused again (and spends the
    attempts for nothing). The message goes back to the outbox, due after the Retry-After."""

    def __init__(self, max_wait_s: float) -> None:
        self.max_wait_s = max_wait_s

    def __call__(self, retry_state: RetryCallState) -> bool:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        return isinstance(exc, Transient) and exc.retry_after is not None and exc.retry_after > self.max_wait_s


def whole_answer(http: httpx.Client, method: str, url: str, *, timeout: float, content: bytes | None = None,
                 headers: dict[str, str] | None = None, params: Any = None, json: Any = None) -> httpx.Response:
    """One request whose answer must be complete within `timeout`: httpx's timeout bounds
    each read, so a receiver (or a wedged proxy) sending its answer a byte at a time would
    hold the caller for minutes. Raises httpx.ReadTimeout past it."""
    ends = time.monotonic() + timeout
    with http.stream(method, url, content=content, headers=headers, params=params, json=json,
                     timeout=timeout) as resp:
        chunks = []
        for chunk in resp.iter_bytes():  # decoded (gzip): the copy below must not say it is encoded
            chunks.append(chunk)
            if time.monotonic() > ends:
                raise httpx.ReadTimeout(f"no complete answer within {timeout:g} s", request=resp.request)
    kept = [(k, v) for k, v in resp.headers.multi_items() if k not in ("content-encoding", "content-length")]
    return httpx.Response(resp.status_code, headers=kept, content=b"".join(chunks), request=resp.request)


class HttpCaller:
    """One client, its retry loop, and the mapping of answers to `Transient`/`Refused`."""

    def __init__(self, backend: str, *, timeout_s: float, retry: RetrySettings,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep,
                 transport: httpx.BaseTransport | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.backend, self.retry, self.clock, self.sleep = backend, retry, clock, sleep
        self.monotonic = monotonic  # what waits and budgets are measured with (`sleep` moves it)
        self.timeout_s = timeout_s
        self.http = httpx.Client(timeout=timeout_s, transport=transport)

    def close(self) -> None:
        self.http.close()

    def deadline(self) -> float:
        """When a delivery starting now must be over (`monotonic`): pass it to each of its calls."""
        return self.monotonic() + DELIVERY_BUDGET_S

    def post(self, url: str, body: Any, headers: dict[str, str], explain: Explain = said,
             sign_with: bytes | None = None, method: str = "POST", deadline: float | None = None) -> httpx.Response:
        """POST (or `method`) JSON `body` (bytes are sent as they are), retried; raises Transient or Refused.
        `deadline` (`self.deadline()`, taken as the delivery began): no attempt starts after it,
        none is given longer than what is left, and no retry is made that would end past it."""
        raw = body if isinstance(body, bytes) else json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
        stop = (stop_after_attempt(self.retry.max_attempts) | AskedToWaitLonger(self.retry.max_wait_s)
                | PastDeadline(self, deadline))
        retrying = Retrying(stop=stop, wait=self.wait_before, sleep=self.sleep, reraise=True,
                            retry=retry_if_exception_type(Transient) & retry_if_not_exception_type(ClaimRunningOut))
        return retrying(self._attempt, method, url, raw, {**headers, "Content-Type": "application/json"}, explain,
                        sign_with, deadline)

    def time_left(self, what: str, deadline: float | None) -> float:
        """`timeout_s`, or less when the delivery's deadline is nearer; Transient when it has passed."""
        if deadline is None:
            return self.timeout_s
        left = deadline - self.monotonic()
        if left <= 0:
            raise Transient(f"{self.backend}: {what} not done: this delivery's {DELIVERY_BUDGET_S:g} s budget "
                            "is used up; will retry")
        return min(self.timeout_s, left)

    def _attempt(self, method: str, url: str, raw: bytes, headers: dict[str, str], explain: Explain,
                 sign_with: bytes | None, deadline: float | None) -> httpx.Response:
        ends = CLAIM_ENDS.get()
        if ends is not None and time.monotonic() + self.timeout_s > ends:
            raise ClaimRunningOut(f"{self.backend}: {url} not called: the outbox claim on this message ends in "
                                  f"{max(0.0, ends - time.monotonic()):.1f} s, before a call of up to "
                                  f"{self.timeout_s:g} s could (this process was paused?); left to the sender "
                                  "that takes it over", uncertain=True)
        timeout = self.time_left(f"{method} {url}", deadline)
        if sign_with is not None:
            ts = str(int(self.clock()))
            headers = {**headers, "X-Vigil-Timestamp": ts, "X-Vigil-Signature": sign(sign_with, ts, raw)}
        try:
            resp = whole_answer(self.http, method, url, content=raw, headers=headers, timeout=timeout)
        except (httpx.ConnectError, httpx.ConnectTimeout) as e:
            raise Transient(f"{self.backend}: cannot connect to {url}: {type(e).__name__}") from e
        except httpx.TransportError as e:
            # The request may have been read and acted on before the answer was lost.
            cut = f" (what was left of this delivery's {DELIVERY_BUDGET_S:g} s)" if timeout < self.timeout_s else ""
            raise Transient(f"{self.backend}: {url}: {type(e).__name__}: {e}{cut}", uncertain=True) from e
        if resp.is_success:
            return resp
        code = resp.status_code
        if code in RETRYABLE_4XX or code >= 500:
            raise Transient(f"{self.backend}: HTTP {code} from {url}: {explain(resp)}",
                            retry_after_s(resp.headers.get("Retry-After"), self.clock()))
        raise Refused(f"{self.backend} refused the request with HTTP {code}: {explain(resp)}")

    def wait_before(self, state: RetryCallState) -> float:
        """The wait before the next attempt: the backend's Retry-After, else the back-off."""
        exc = state.outcome.exception() if state.outcome else None
        hinted = exc.retry_after if isinstance(exc, Transient) else None
        wait = hinted if hinted is not None else self.retry.backoff_s * 2 ** (state.attempt_number - 1)
        return min(wait, self.retry.max_wait_s)


def run_delivery(send: Callable[[], dict[str, Any] | None]) -> DeliveryResult:
    """Run a receiver's calls for one message and say how it went.

    `send` returns the ref to keep for the incident's next message (what was sent)."""
    try:
        ref = send()
    except Transient as e:
        wait = None if e.retry_after is None else min(e.retry_after, MAX_RETRY_AFTER_S)
        return DeliveryResult(DeliveryStatus.RETRY, error=e.detail, retry_after=wait, uncertain=e.uncertain)
    except SecretMissing as e:
        # Kept, not failed: a secret mounted late or fixed after the fact still lets the page out.
        return DeliveryResult(DeliveryStatus.RETRY, error=str(e))
    except Refused as e:
        return DeliveryResult(DeliveryStatus.FAILED, error=str(e))
    return DeliveryResult(DeliveryStatus.DELIVERED, ref=ref)
