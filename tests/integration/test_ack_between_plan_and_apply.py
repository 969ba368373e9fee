"""An ack that commits after the cycle planned its messages and before it locked the
incident to write them. The messages follow the incident as read under the lock: a reminder
planned for an unacknowledged incident is not sent to one the on-call just took, while an
escalation above the severity acknowledged still tells people."""
from __future__ import annotations

from typing import Any

import pytest

import monitor.vigil as vigil_mod
from monitor.vigil import Vigil
from tests.helpers_vigil import MODEL, T0, incident_prometheus, make_config, make_vigil

pytestmark = pytest.mark.integration


def _vigil(tmp_path: Any) -> Vigil:
    cfg = make_config(tmp_path, policy={"slo_consecutive_cycles": 2, "resolve_after_cycles": 2,
                                        "repeat_interval": "5m"})
    return make_vigil(cfg, prometheus=incident_prometheus())


def _ack_before_apply(vigil: Vigil, monkeypatch: pytest.MonkeyPatch, incident_id: int, t: float) -> None:
    """The on-call's ack commits between the cycle's plan and its apply."""
    real = vigil_mod.apply_plan

    def ack_then_apply(*a: Any, **k: Any) -> Any:
        vigil.operator.acknowledge(incident_id, "api:oncall", t - 1)
        return real(*a, **k)

    monkeypatch.setattr(vigil_mod, "apply_plan", ack_then_apply)


def _replies(vigil: Vigil, incident_id: int, change: str) -> list[float]:
    return [m.payload["at"] for m in vigil.store.outbox_for_prefix(f"incident:{incident_id}")
            if m.kind == "reply" and m.payload["change"] == change]


def test_an_ack_between_plan_and_apply_stops_the_reminder_planned_before_it(tmp_path, monkeypatch):
    vigil = _vigil(tmp_path)
    assert [vigil.run_cycle(MODEL, T0 + 60 * k).step for k in range(2)] == ["open", "update"]
    for k in range(2, 6):
        vigil.run_cycle(MODEL, T0 + 60 * k)
    (row,) = vigil.store.incidents()
    t1 = T0 + 360  # the critical's repeat is due: the plan reminds people of it
    _ack_before_apply(vigil, monkeypatch, row.id, t1)

    report = vigil.run_cycle(MODEL, t1)

    assert vigil.store.incident(row.id).acknowledged_by == "api:oncall"
    assert _replies(vigil, row.id, "repeated") == [], "the on-call was reminded of an incident they had just taken"
    assert report.step == "unchanged"
    assert vigil.store.incident(row.id).last_notified_at == T0 + 60  # the repeat clock did not restart


def test_an_escalation_above_an_ack_given_between_plan_and_apply_still_pages(tmp_path, monkeypatch):
    vigil = _vigil(tmp_path)
    assert vigil.run_cycle(MODEL, T0).step == "open"  # a warning, told to the owner
    (row,) = vigil.store.incidents()
    t1 = T0 + 60  # the SLO's second breached cycle: critical
    _ack_before_apply(vigil, monkeypatch, row.id, t1)

    report = vigil.run_cycle(MODEL, t1)

    assert report.step == "update"
    assert _replies(vigil, row.id, "escalated") == [t1]
    now = vigil.store.incident(row.id)
    assert (now.severity, now.acknowledged_by) == ("critical", None)  # the warning's ack does not cover it
