"""An escalation past a lapsed ack closes the acknowledged alert and opens a new one. The
README promises that a retry, a restart or a sender that died after the backend took the
call re-sends it and the backend folds it in: the escalation's message sent again (its
answer lost, its claim lapsed) must not close the new page and open a third."""
from __future__ import annotations

from typing import Any

import pytest

from alerts.receivers.http import SecretSource
from alerts.receivers.opsgenie import OpsgenieReceiver
from alerts.receivers.pagerduty import PagerDutyReceiver
from tests.fakes.opsgenie_server import FakeOpsgenie
from tests.fakes.pagerduty_server import FakePagerDuty
from tests.helpers_receivers import OG_KEY, PD_KEY, deliver, incident_record, one_try_http


def record(severity: str, status: str = "open", acknowledged_by: str | None = None) -> dict[str, Any]:
    return incident_record(severity=severity, status=status, acknowledged_by=acknowledged_by)


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
        story(PagerDutyReceiver("pd", SecretSource("key", env="PD_KEY_T"), one_try_http(), url=pd.url))
        alerts = pd.alerts()
        assert [(a.severity, a.status) for a in alerts] == [("warning", "resolved"), ("critical", "resolved")], \
            "one critical page for one escalation, resolved with the incident"


def test_opsgenie_escalation_sent_twice_creates_one_alert(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("OG_KEY_T", OG_KEY)
    with FakeOpsgenie(OG_KEY) as og:
        story(OpsgenieReceiver("og", SecretSource("key", env="OG_KEY_T"), one_try_http(), url=og.url))
        alerts = og.alerts()
        assert [(a.priority, a.status) for a in alerts] == [("P3", "closed"), ("P1", "closed")], \
            "one P1 alert for one escalation, closed with the incident"
