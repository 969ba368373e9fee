"""An escalation past a lapsed ack closes the acknowledged alert and opens a new one. The
README promises that a retry, a restart or a sender that died after the backend took the
call re-sends it and the backend folds it in: the escalation's message sent again (its
answer lost, its claim lapsed) must not close the new page and open a third."""
from __future__ import annotations

from typing import Any

import pytest

from alerts.outbox import DeliveryResult, DeliveryStatus, MessageKind, OutboxMessage
from alerts.receivers.http import HttpCaller, RetrySettings, SecretSource
from alerts.receivers.opsgenie import OpsgenieReceiver
from alerts.receivers.pagerduty import PagerDutyReceiver
from tests.fakes.opsgenie_server import FakeOpsgenie
from tests.fakes.pagerduty_server import FakePagerDuty

PD_KEY = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
OG_KEY = "og-key-1"
T = 1_800_000_000.0


def record(severity: str, status: str = "open", acknowledged_by: str | None = None) -> dict[str, Any]:
    return {"dedup_key": "vigil-incident-1", "incident_id": 1, "model": "recommender", "severity": severity,
            "status": status, "title": "CTR down", "opened_at": T, "updated_at": T + 60,
            "resolved_at": T + 600 if status == "resolved" else None, "acknowledged_by": acknowledged_by,
            "top_cause": None, "findings": [], "finding_count": 0, "links": {}}


def http() -> HttpCaller:
    return HttpCaller("test", timeout_s=5.0, retry=RetrySettings(max_attempts=1, backoff_s=0.0, max_wait_s=0.0))


def deliver(receiver: Any, n: int, payload: dict[str, Any], ref: dict[str, Any] | None) -> DeliveryResult:
    result: DeliveryResult = receiver.deliver(
        OutboxMessage(id=n, notifier="r", kind=MessageKind.INCIDENT, key="incident:1", payload=payload, ref=ref))
    assert result.status == DeliveryStatus.DELIVERED, result.error
    return result


def story(r: Any) -> None:
    """Warning paged, acked, escalated (sent twice: the first answer lost), resolved."""
    first = deliver(r, 1, record("warning"), None)
    acked = deliver(r, 2, record("warning", acknowledged_by="alice"), first.ref)
    deliver(r, 3, record("critical"), acked.ref)  # delivered, but its outcome never recorded
    again = deliver(r, 3, record("critical"), acked.ref)  # the same row sent again
    deliver(r, 4, record("critical", status="resolved"), again.ref)


def test_pagerduty_escalation_sent_twice_pages_once(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PD_KEY_T", PD_KEY)
    with FakePagerDuty() as pd:
        story(PagerDutyReceiver("pd", SecretSource("key", env="PD_KEY_T"), http(), url=pd.url))
        alerts = pd.alerts()
        assert [(a.severity, a.status) for a in alerts] == [("warning", "resolved"), ("critical", "resolved")], \
            "one critical page for one escalation, resolved with the incident"


def test_opsgenie_escalation_sent_twice_creates_one_alert(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("OG_KEY_T", OG_KEY)
    with FakeOpsgenie(OG_KEY) as og:
        story(OpsgenieReceiver("og", SecretSource("key", env="OG_KEY_T"), http(), url=og.url))
        alerts = og.alerts()
        assert [(a.priority, a.status) for a in alerts] == [("P3", "closed"), ("P1", "closed")], \
            "one P1 alert for one escalation, closed with the incident"
