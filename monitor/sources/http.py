"""The HTTP plumbing Loki and Tempo clients share: one retry budget, the contract's
status codes mapped to our errors, and a /ready probe.

429, 5xx and connection failures are retried with exponential backoff (tenacity) and
then raise SourceUnavailable; 400 is the query's fault (QueryError with the backend's
plain-text reason, never retried); other statuses mean a wrong URL or credentials.
A Retry-After on a 429 or 5xx is waited out when it is within `max_backoff_s`; a longer
one ends the call at once (SourceUnavailable) and every call until it has passed fails
the same way without asking: a throttled backend is not hammered by each model's cycle.
That pause is capped at MAX_RETRY_AFTER_S: a proxy's day-long (or absurd) Retry-After
must not keep the source down, and every cycle blind, for a day.
A backend that could not be connected to at all (refused, DNS, connect timeout) after
the retries is not asked again for DOWN_HOLD_S either: every model's cycle would wait out
the same retries and backoff (a dead Loki made a 1,000-model sweep take half an hour).
Nor is one that took requests and answered none: TIMEOUTS_BEFORE_HOLD calls in a row
that timed out on every attempt (each cost timeout_s x attempts). One call's timeouts or
5xx may be one heavy query's and hold nothing.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from alerts.receivers.http import MAX_RETRY_AFTER_S, retry_after_s, whole_answer
from monitor.sources.errors import QueryError, SourceState, SourceStatus, SourceUnavailable

DOWN_HOLD_S = 30.0  # an unreachable backend is not asked again for this long (each cycle blind at once)
TIMEOUTS_BEFORE_HOLD = 3  # calls in a row that timed out on every attempt: the backend is hung, held too


def bounded_retry_after(value: str | None, now: float) -> float | None:
    """A Retry-After header (seconds or HTTP date) as seconds, at most MAX_RETRY_AFTER_S;
    None when absent or unreadable."""
    hinted = retry_after_s(value, now)
    return None if hinted is None else min(hinted, MAX_RETRY_AFTER_S)


class Throttle:
    """A backend's Retry-After longer than a retry may wait: until it has passed, every call
    fails at once (SourceUnavailable) without asking, so no model's cycle hammers it."""

    def __init__(self, source: str, url: str) -> None:
        self.source, self.url = source, url
        self._until, self._why = 0.0, ""  # monotonic time before which not to ask, and why

    def check(self) -> None:
        left = self._until - time.monotonic()
        if left > 0:
            raise SourceUnavailable(self.source, self.url, f"{self._why}; not asked again for {left:.0f} s")

    def hold(self, seconds: float, reason: str) -> SourceUnavailable:
        """Ask nothing for `seconds`; the error to raise now."""
        self._until, self._why = time.monotonic() + seconds, f"{reason} (Retry-After {seconds:.0f} s)"
        return SourceUnavailable(self.source, self.url, self._why)

    def down(self, seconds: float, reason: str) -> None:
        """Ask nothing for `seconds`: the backend could not be reached for `reason`."""
        self._until, self._why = time.monotonic() + seconds, reason


def backoff_or_retry_after(multiplier: float, max_s: float) -> Callable[[RetryCallState], float]:
    """Tenacity's wait: the exponential backoff, or the failed attempt's `retry_after` (the
    seconds its server asked for) when that is longer."""
    backoff = wait_exponential(multiplier=multiplier, max=max_s)

    def wait(rs: RetryCallState) -> float:
        e = rs.outcome.exception() if rs.outcome else None
        return max(float(backoff(rs)), getattr(e, "retry_after", None) or 0.0)
    return wait


class _Retryable(Exception):
    def __init__(self, reason: str, retry_after: float | None = None, *, unreachable: bool = False,
                 timed_out: bool = False) -> None:
        super().__init__(reason)
        self.reason, self.retry_after = reason, retry_after
        self.unreachable = unreachable  # no connection at all: every request would fail alike
        self.timed_out = timed_out  # sent, and no (whole) answer within timeout_s


class HttpSource:
    source = "http"

    def __init__(self, url: str, timeout_s: float, headers: dict[str, str], *, client: httpx.Client | None,
                 retries: int, backoff_s: float, max_backoff_s: float) -> None:
        self.url, self.timeout_s = url, timeout_s
        self.retries, self.backoff_s, self.max_backoff_s = retries, backoff_s, max_backoff_s
        self._throttle = Throttle(self.source, url)
        self._timeouts_in_row = 0  # calls that ended timed out, since the last that did not
        headers = {"Accept": "application/json", **headers}
        self._client = client or httpx.Client(base_url=url.rstrip("/"), timeout=timeout_s, headers=headers)
        if client is not None:
            self._client.headers.update(headers)

    def close(self) -> None:
        self._client.close()

    def _get_or_none(self, path: str, params: dict[str, Any], query: str) -> httpx.Response | None:
        """Like `_get`, but None for a 404 (what was asked for does not exist)."""
        r = self._get(path, params, query, allow_404=True)
        return None if r.status_code == 404 else r

    def _get(self, path: str, params: dict[str, Any], query: str, *, allow_404: bool = False) -> httpx.Response:
        """One GET, retried on transport errors, 429 and 5xx; a 404 is returned only with `allow_404`."""
        self._throttle.check()

        def once() -> httpx.Response:
            try:
                # The whole answer within timeout_s: httpx's timeout bounds each read, and a
                # backend (or a wedged proxy) sending a byte at a time would hold the cycle for minutes.
                r = whole_answer(self._client, "GET", path, params=params, timeout=self.timeout_s)
            except httpx.HTTPError as e:
                unreachable = isinstance(e, (httpx.ConnectError, httpx.ConnectTimeout))
                raise _Retryable(f"{type(e).__name__}: {e}", unreachable=unreachable,
                                 timed_out=isinstance(e, httpx.TimeoutException) and not unreachable) from e
            self._timeouts_in_row = 0  # it answered: not hung
            if r.status_code == 429 or r.status_code >= 500:
                reason = f"HTTP {r.status_code}: {r.text.strip()[:300]}"
                hinted = bounded_retry_after(r.headers.get("Retry-After"), time.time())
                if hinted is not None and hinted > self.max_backoff_s:
                    raise self._throttle.hold(hinted, reason)
                raise _Retryable(reason, hinted)
            if r.status_code == 404 and allow_404:
                return r
            said = r.text.strip()
            if "no org id" in said:  # dskit's answer to a request without X-Scope-OrgID
                said += f" (sources.{self.source}.tenant is sent as X-Scope-OrgID)"
            if r.status_code == 400:
                raise QueryError(self.source, query, said or "HTTP 400")
            if r.status_code != 200:
                raise SourceUnavailable(self.source, self.url, f"HTTP {r.status_code}: {said[:300]}")
            return r

        try:
            for attempt in Retrying(stop=stop_after_attempt(self.retries + 1),
                                    wait=backoff_or_retry_after(self.backoff_s, self.max_backoff_s),
                                    retry=retry_if_exception_type(_Retryable), reraise=True):
                with attempt:
                    return once()
        except _Retryable as e:
            raise self._gave_up(e) from None
        raise AssertionError("unreachable")

    def _gave_up(self, e: _Retryable) -> SourceUnavailable:
        """The error a call that ran out of retries raises; an unreachable or hung backend is
        held (DOWN_HOLD_S), so the next models' cycles do not wait out the same retries."""
        reason = f"{e.reason} (after {self.retries + 1} attempts)"
        self._timeouts_in_row = self._timeouts_in_row + 1 if e.timed_out else 0
        if self._timeouts_in_row >= TIMEOUTS_BEFORE_HOLD:
            reason += f"; {self._timeouts_in_row} requests in a row timed out"
            self._timeouts_in_row = 0
            self._throttle.down(DOWN_HOLD_S, reason)
        elif e.unreachable:
            self._throttle.down(DOWN_HOLD_S, reason)
        return SourceUnavailable(self.source, self.url, reason)

    def ready(self) -> SourceState:
        now = time.time()
        try:  # the whole answer within timeout_s, as for queries: the probe asks every source in turn
            r = whole_answer(self._client, "GET", "/ready", timeout=self.timeout_s)
        except httpx.HTTPError as e:
            return SourceState(self.source, SourceStatus.DOWN, self.url, f"{type(e).__name__}: {e}", now)
        status = SourceStatus.UP if r.status_code == 200 else SourceStatus.DOWN
        detail = r.text.strip()[:200] if r.status_code == 200 else f"HTTP {r.status_code}: {r.text.strip()[:200]}"
        return SourceState(self.source, status, self.url, detail, now)
