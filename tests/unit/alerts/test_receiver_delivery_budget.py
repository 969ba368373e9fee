"""One Opsgenie or PagerDuty delivery makes several calls (an escalation past a lapsed ack:
close, then a new alert; Opsgenie checks the status of each). Each call was bounded (timeout_s, retries:
at most 240 s, monitor/config_receivers.py), the delivery was not: two slow calls held the
row past the outbox claim (300 s), and another sender could take it over mid-delivery and
page twice. Against the fake, its answers slowed on a clock the receiver sleeps and measures
with, so minutes pass in no time."""
from __future__ import annotations

import time
from typing import Any

import pytest

from alerts.outbox import DeliveryStatus, MessageKind, OutboxMessage
from alerts.receivers.http import DELIVERY_BUDGET_S, HttpCaller, RetrySettings, SecretSource
from alerts.receivers.opsgenie import OpsgenieReceiver
from alerts.receivers.pagerduty import PagerDutyReceiver
from tests.fakes.opsgenie_server import FakeOpsgenie
from tests.fakes.pagerduty_server import FakePagerDuty
from tests.fakes.slow_answers import Clock, SlowAnswers
from tests.helpers_receivers import OG_KEY, PD_KEY, incident_record


@pytest.fixture
def og(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("OG_KEY_T", OG_KEY)
    with FakeOpsgenie(OG_KEY) as fake:
        yield fake


def _send(r: OpsgenieReceiver | PagerDutyReceiver, n: int, ref: dict[str, Any] | None, **record: Any):
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


def test_a_pagerduty_escalation_of_slow_calls_ends_within_its_budget_too(monkeypatch):
    """PagerDuty's escalation past a lapsed ack is a resolve and a new trigger: the same two calls."""
    monkeypatch.setenv("PD_KEY_T", PD_KEY)
    clock = Clock()
    slow = SlowAnswers(clock)
    http = HttpCaller("PagerDuty (pd)", timeout_s=150.0, retry=RetrySettings(max_attempts=1, backoff_s=0.0),
                      sleep=clock.sleep, transport=slow, monotonic=clock.now)
    with FakePagerDuty() as pd:
        r = PagerDutyReceiver("pd", SecretSource("key", env="PD_KEY_T"), http, url=pd.url)
        acked = _send(r, 1, None, severity="warning", acknowledged_by="api:owner")
        assert acked.status == DeliveryStatus.DELIVERED, acked.error

        slow.answer_s = 130.0
        started = clock.now()
        escalated = _send(r, 2, acked.ref, severity="critical")
        took = clock.now() - started
        assert took <= DELIVERY_BUDGET_S, f"one delivery held its row {took:g} s: past the budget, near the claim"
        assert escalated.status == DeliveryStatus.RETRY and f"{DELIVERY_BUDGET_S:g} s" in escalated.error

        slow.answer_s = 0.0
        assert _send(r, 2, acked.ref, severity="critical").status == DeliveryStatus.DELIVERED
        assert [(a.dedup_key, a.status) for a in pd.alerts()] == [
            ("vigil-incident-1", "resolved"), ("vigil-incident-1~2", "triggered")]
