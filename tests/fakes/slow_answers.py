"""Answers slowed on a clock of the test's, not the wall's: a receiver given `Clock.now` as
its monotonic clock and `Clock.sleep` as its sleep spends minutes of it in no real time, so
a test can show what a delivery of slow calls does with its budget."""
from __future__ import annotations

import httpx


class Clock:
    """Monotonic time for the receiver: its sleeps and the slow answers move it."""

    def __init__(self) -> None:
        self.t = 1000.0

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds


class SlowAnswers(httpx.BaseTransport):
    """Each POST or PUT is answered `answer_s` later on `clock` (a status check at once). One
    slower than the request's timeout is cut there, as httpx cuts it, after the server got it."""

    def __init__(self, clock: Clock) -> None:
        self.inner, self.clock, self.answer_s = httpx.HTTPTransport(), clock, 0.0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        resp = self.inner.handle_request(request)
        if request.method == "GET" or not self.answer_s:
            return resp
        timeout = request.extensions.get("timeout", {}).get("read")
        if timeout is not None and self.answer_s > timeout:
            resp.close()
            self.clock.t += timeout
            raise httpx.ReadTimeout(f"no answer within {timeout:g} s", request=request)
        self.clock.t += self.answer_s
        return resp
