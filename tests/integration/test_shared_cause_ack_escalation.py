"""A member of a shared cause paged on its own before its group formed, and its owner
acknowledged that page; it then escalates while its group speaks for it. The group's page
tells the escalation (the group holds the member); the member's own acknowledged alert must
not also be closed and opened anew as a second, critical alert: one escalation, one page."""
from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from monitor.receivers import build_receivers
from monitor.vigil import Vigil
from tests.fakes.opsgenie_server import FakeOpsgenie
from tests.fakes.pagerduty_server import FakePagerDuty
from tests.helpers_vigil import CTR_QUERY, P99_QUERY, T0, StubPrometheus, make_vigil, step_curve
from tests.integration.test_shared_cause import SEL, _Sink, config, cycles, registry

pytestmark = pytest.mark.integration
PD_KEY = "0123456789abcdef0123456789abcdef"
OG_KEY = "opsgenie-shared-ack-key"
FAST = {"timeout_s": 5.0, "max_attempts": 3, "backoff_s": 0.0, "max_wait_s": 0.2}


def prometheus() -> StubPrometheus:
    """The recommender's p99 breaches at once (a warning, critical on its 4th cycle); the GPU
    both models run on has saturated for 5 min only one cycle later, so the recommender
    pages on its own first, and then the GPU's shared cause takes both models."""
    return StubPrometheus({f"DCGM_FI_DEV_GPU_UTIL{SEL}": step_curve(40, 99, T0 - 240),
                           P99_QUERY: step_curve(0.1, 0.8, T0 - 600),
                           'p99_of{model="ranker"}': lambda ts: np.full(len(ts), 0.1),
                           CTR_QUERY: lambda ts: np.full(len(ts), 0.05),
                           'ctr_of{model="ranker"}': lambda ts: np.full(len(ts), 0.05)})


def vigil_with(tmp_path: Any, receiver: dict[str, Any]) -> Vigil:
    cfg = config(tmp_path, receivers=[receiver], policy={"slo_consecutive_cycles": 4, "resolve_after_cycles": 2})
    return make_vigil(cfg, prometheus=prometheus(), registry=registry(),
                      notifiers={"sink": _Sink(), **build_receivers(cfg)})


def acked_then_grouped(vigil: Vigil) -> None:
    cycles(vigil, [T0])  # the recommender alone: its own warning page
    (rec,) = vigil.store.incidents()
    vigil.operator.acknowledge(rec.id, "api:owner", T0 + 30)
    for _ in range(5):
        if vigil.deliver(T0 + 30) == 0:
            break
    cycles(vigil, [T0 + 60, T0 + 120])  # the GPU's group takes both, waits, holds the recommender
    assert vigil.store.incident(rec.id).acknowledged_by == "api:owner"
    cycles(vigil, [T0 + 180])  # the recommender turns critical; the group pages
    assert vigil.store.incident(rec.id).severity == "critical"
    cycles(vigil, [T0 + 240, T0 + 300])


def test_a_held_members_escalation_past_its_ack_pages_pagerduty_once(tmp_path, monkeypatch):
    monkeypatch.setenv("PD_ROUTING_KEY", PD_KEY)
    with FakePagerDuty() as pd:
        vigil = vigil_with(tmp_path, {"name": "pd", "kind": "pagerduty", "routing_key_env": "PD_ROUTING_KEY",
                                      "url": pd.url, **FAST})
        acked_then_grouped(vigil)
        alerts = [(a.dedup_key, a.severity, a.status) for a in pd.alerts()]
    assert alerts == [("vigil-incident-1", "warning", "acknowledged"), ("vigil-group-1", "critical", "triggered")], \
        f"the escalation paged twice, as the group and as the member's own new alert: {alerts}"


def test_a_held_members_escalation_past_its_ack_pages_opsgenie_once(tmp_path, monkeypatch):
    monkeypatch.setenv("OG_API_KEY", OG_KEY)
    with FakeOpsgenie(OG_KEY) as og:
        vigil = vigil_with(tmp_path, {"name": "og", "kind": "opsgenie", "api_key_env": "OG_API_KEY",
                                      "url": og.url, **FAST})
        acked_then_grouped(vigil)
        alerts = [(a.alias, a.priority, a.status, a.acknowledged) for a in og.alerts()]
    assert [a for a in alerts if a[2] == "open" and not a[3]] == [("vigil-group-1", "P1", "open", False)], \
        f"the escalation paged twice, as the group and as the member's own new alert: {alerts}"
    assert len(alerts) == 2, alerts


def test_a_held_members_acknowledged_opsgenie_alert_keeps_its_priority(tmp_path, monkeypatch):
    """The group's P1 pages for the escalation; the member's acknowledged alert raised to P1
    as well set off the on-call's P1 policies (notification, escalation) a second time."""
    monkeypatch.setenv("OG_API_KEY", OG_KEY)
    with FakeOpsgenie(OG_KEY) as og:
        vigil = vigil_with(tmp_path, {"name": "og", "kind": "opsgenie", "api_key_env": "OG_API_KEY",
                                      "url": og.url, **FAST})
        acked_then_grouped(vigil)
        member = [(a.alias, a.priority) for a in og.alerts() if a.alias.startswith("vigil-incident-")]
    assert member == [("vigil-incident-1", "P3")], f"the held member's acknowledged alert was raised: {member}"
