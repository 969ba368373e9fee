"""An SRE sets `dedup_prefix` (the README asks for one per installation sharing a PagerDuty
service) while incidents are open. Their later changes are recorded under the new prefix,
but the page went out under the old key: the acknowledgement and the resolve must reach
that page, not a key the backend has never seen (dropped: the page stays open for ever)."""
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


def record(prefix: str, status: str = "open", acknowledged_by: str | None = None) -> dict[str, Any]:
    return {"dedup_key": f"{prefix}-incident-1", "incident_id": 1, "model": "recommender", "severity": "critical",
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


def test_pagerduty_resolve_after_a_prefix_change_resolves_the_page_it_opened(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PD_KEY_T", PD_KEY)
    with FakePagerDuty() as pd:
        r = PagerDutyReceiver("pd", SecretSource("key", env="PD_KEY_T"), http(), url=pd.url)
        first = deliver(r, 1, record("vigil"), None)
        acked = deliver(r, 2, record("prod", acknowledged_by="alice"), first.ref)
        deliver(r, 3, record("prod", status="resolved", acknowledged_by="alice"), acked.ref)
        assert [(a.dedup_key, a.status) for a in pd.alerts()] == [("vigil-incident-1", "resolved")]


def test_opsgenie_close_after_a_prefix_change_closes_the_alert_it_created(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("OG_KEY_T", OG_KEY)
    with FakeOpsgenie(OG_KEY) as og:
        r = OpsgenieReceiver("og", SecretSource("key", env="OG_KEY_T"), http(), url=og.url)
        first = deliver(r, 1, record("vigil"), None)
        updated = deliver(r, 2, record("prod"), first.ref)
        deliver(r, 3, record("prod", status="resolved"), updated.ref)
        assert [(a.alias, a.status, a.count) for a in og.alerts()] == [("vigil-incident-1", "closed", 2)]
