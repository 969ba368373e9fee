"""An SRE sets `dedup_prefix` (the README asks for one per installation sharing a PagerDuty
service) while incidents are open. Their later changes are recorded under the new prefix,
but the page went out under the old key: the acknowledgement and the resolve must reach
that page, not a key the backend has never seen (dropped: the page stays open for ever)."""
from __future__ import annotations

from typing import Any

import pytest

from alerts.receivers.http import SecretSource
from alerts.receivers.opsgenie import OpsgenieReceiver
from alerts.receivers.pagerduty import PagerDutyReceiver
from tests.fakes.opsgenie_server import FakeOpsgenie
from tests.fakes.pagerduty_server import FakePagerDuty
from tests.helpers_receivers import OG_KEY, PD_KEY, deliver, incident_record, one_try_http


def record(prefix: str, status: str = "open", acknowledged_by: str | None = None) -> dict[str, Any]:
    return incident_record(prefix=prefix, status=status, acknowledged_by=acknowledged_by)


def test_pagerduty_resolve_after_a_prefix_change_resolves_the_page_it_opened(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PD_KEY_T", PD_KEY)
    with FakePagerDuty() as pd:
        r = PagerDutyReceiver("pd", SecretSource("key", env="PD_KEY_T"), one_try_http(), url=pd.url)
        first = deliver(r, 1, record("vigil"), None)
        acked = deliver(r, 2, record("prod", acknowledged_by="alice"), first.ref)
        deliver(r, 3, record("prod", status="resolved", acknowledged_by="alice"), acked.ref)
        assert [(a.dedup_key, a.status) for a in pd.alerts()] == [("vigil-incident-1", "resolved")]


def test_opsgenie_close_after_a_prefix_change_closes_the_alert_it_created(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("OG_KEY_T", OG_KEY)
    with FakeOpsgenie(OG_KEY) as og:
        r = OpsgenieReceiver("og", SecretSource("key", env="OG_KEY_T"), one_try_http(), url=og.url)
        first = deliver(r, 1, record("vigil"), None)
        updated = deliver(r, 2, record("prod"), first.ref)
        deliver(r, 3, record("prod", status="resolved"), updated.ref)
        assert [(a.alias, a.status, a.count) for a in og.alerts()] == [("vigil-incident-1", "closed", 2)]
