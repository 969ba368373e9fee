"""One Opsgenie delivery makes several calls (an escalation past a lapsed ack: close, then a
new alert), each with its own status check. Each call was bounded (timeout_s, retries:
at most 240 s, monitor/config_receivers.py), the delivery was not: two slow calls held the
row past the outbox claim (300 s), and another sender could take it over mid-delivery and
page twice. Against the fake, its answers slowed on a clock the receiver sleeps and measures
with, so minutes pass in no time."""
from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from alerts.outbox import DeliveryStatus, MessageKind, OutboxMessage
from alerts.receivers.http import DELIVERY_BUDGET_S, HttpCaller, RetrySettings, SecretSource
from alerts.receivers.opsgenie import OpsgenieReceiver
from tests.fakes.opsgenie_server import FakeOpsgenie
from tests.helpers_receivers import OG_KEY, incident_record


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


@pytest.fixture
def og(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("OG_KEY_T", OG_KEY)
    with FakeOpsgenie(OG_KEY) as fake:
        yield fake


def _send(r: OpsgenieReceiver, n: int, ref: dict[str, Any] | None, **record: Any):
    return r.deliver(OutboxMessage(id=n, notifier="og", kind=MessageKind.INCIDENT, key="incident:1",
                                   payload=incident_record(**record), ref=ref))


def test_a_whole_delivery_of_slow_calls_ends_within_its_budget_and_goes_back_to_the_outbox(og):
    clock = Clock()
    slow = SlowAnswers(clock)
    # 150 s a call at most (one attempt): a valid receiver, each of its calls well inside the claim
    http = HttpCaller("Opsgenie (og)", timeout_s=150.0, retry=RetrySettings(max_attempts=1, backoff_s=0.0),
                      sleep=clock.sleep, transport=slow, monotonic=clock.now)
    r = OpsgenieReceiver("og", SecretSource("key", env="OG_KEY_T"), http, url=og.url)
    acked = _send(r, 1, None, severity="warning", acknowledged_by="api:owner")
    assert acked.status == DeliveryStatus.DELIVERED, acked.error

    slow.answer_s = 130.0  # every call answered after 130 s: the close and the new alert take 260 s
    started, real = clock.now(), time.monotonic()
    escalated = _send(r, 2, acked.ref, severity="critical")
    took = clock.now() - started

    assert took <= DELIVERY_BUDGET_S, f"one delivery held its row {took:g} s: past the budget, near the claim"
    assert escalated.status == DeliveryStatus.RETRY, "cut short: back to the outbox, not dropped"
    assert f"{DELIVERY_BUDGET_S:g} s" in escalated.error, escalated.error
    assert time.monotonic() - real < 10.0, "bounded in real time too"

    slow.answer_s = 0.0  # the outbox's retry, Opsgenie fast again: one new P1 alert, the old one closed
    again = _send(r, 2, acked.ref, severity="critical")
    assert again.status == DeliveryStatus.DELIVERED, again.error
    assert [(a.alias, a.status, a.priority) for a in og.alerts()] == [
        ("vigil-incident-1", "closed", "P3"), ("vigil-incident-1~2", "open", "P1")]
