"""Opsgenie answers 202 before it has done anything: a create that later fails, or a close
processed before its create, must not be recorded as delivered (an alert that never
exists, or one left open for ever). Against the fake's asynchronous processing."""
from __future__ import annotations

import time
from typing import Any

import pytest

from alerts.outbox import DeliveryStatus, MessageKind, OutboxMessage
from alerts.receivers.http import SecretSource
from alerts.receivers.opsgenie import OpsgenieReceiver
from tests.fakes.opsgenie_server import FakeOpsgenie
from tests.helpers_receivers import OG_KEY, incident_record, one_try_http


@pytest.fixture
def og(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("OG_KEY_T", OG_KEY)
    with FakeOpsgenie(OG_KEY) as fake:
        yield fake


def receiver(og: FakeOpsgenie) -> OpsgenieReceiver:
    return OpsgenieReceiver("og", SecretSource("key", env="OG_KEY_T"), one_try_http(), url=og.url)


def send(r: OpsgenieReceiver, n: int, ref: dict[str, Any] | None, **record: Any):
    return r.deliver(OutboxMessage(id=n, notifier="og", kind=MessageKind.INCIDENT, key="incident:1",
                                   payload=incident_record(**record), ref=ref))


def test_a_create_that_fails_when_processed_is_retried_not_recorded_as_paged(og):
    r = receiver(og)
    og.fail_next(1, status="Could not create alert")
    first = send(r, 1, None, severity="critical")
    assert first.status == DeliveryStatus.RETRY, "Opsgenie said 202, then failed it: nobody was paged"
    assert "Could not create alert" in first.error
    again = send(r, 1, None, severity="critical")
    assert again.status == DeliveryStatus.DELIVERED
    assert [a.status for a in og.alerts()] == ["open"]


def test_a_close_is_never_processed_before_its_create(og):
    r = receiver(og)
    og.delay_next(0.5)  # the create is slow to process
    opened = send(r, 1, None, severity="critical")
    assert opened.status == DeliveryStatus.DELIVERED, opened.error
    closed = send(r, 2, opened.ref, severity="critical", status="resolved")
    assert closed.status == DeliveryStatus.DELIVERED, closed.error
    time.sleep(0.6)
    assert [a.status for a in og.alerts()] == ["closed"], "resolved in Vigil: closed in Opsgenie"


def test_a_create_still_processing_past_the_wait_goes_back_to_the_outbox(og, monkeypatch):
    monkeypatch.setattr("alerts.receivers.opsgenie.PROCESSING_WAIT_S", 0.3)
    r = receiver(og)
    og.delay_next(2.0)
    started = time.monotonic()
    result = send(r, 1, None, severity="critical")
    assert time.monotonic() - started < 1.5, "bounded"
    assert result.status == DeliveryStatus.RETRY and "still processing" in result.error


def test_a_key_without_read_access_still_pages_once_and_says_what_it_cannot_check(monkeypatch, caplog):
    monkeypatch.setenv("OG_KEY_T", OG_KEY)
    monkeypatch.setattr("alerts.receivers.opsgenie.PROCESSING_WAIT_S", 0.5)
    with FakeOpsgenie(OG_KEY, read_access=False) as fake, caplog.at_level("WARNING"):
        result = send(receiver(fake), 1, None, severity="critical")
        assert result.status == DeliveryStatus.DELIVERED, "a key that may only create still pages, once"
        assert [a.status for a in fake.alerts()] == ["open"]
    assert any("Read Access" in r.getMessage() for r in caplog.records)
