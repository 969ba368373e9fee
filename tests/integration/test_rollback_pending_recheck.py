"""A pending automatic rollback (MLflow answering 503 to set_alias) is driven later only while
what allowed it still holds: the incident open, automatic rollback on and not a dry run, no
maintenance window, the model configured. Else it is abandoned, nothing moved, recorded,
audited and shown; a move that landed anyway is recorded done, never reversed."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from monitor.cycle.removed import resolve_removed
from monitor.vigil import Vigil
from tests.helpers_vigil import (
    MODEL,
    T0,
    MemoryRegistry,
    incident_prometheus,
    make_config,
    make_vigil,
    model_config,
    serving_registry,
)

BAD_FROM = T0 - 300
POLICY: dict[str, Any] = {"slo_consecutive_cycles": 2, "resolve_after_cycles": 2}


def _stuck_rollback(tmp_path: Path, *, bad_until: float = float("inf"), models: list[dict[str, Any]] | None = None
                    ) -> tuple[Vigil, MemoryRegistry]:
    """v2 deployed, critical at T0; Vigil's rollback to v1 recorded, MLflow refusing set_alias."""
    reg = serving_registry()
    reg.add_version("other", "1", created_at=T0 - 86400 * 30)
    reg.aliases[("other", "champion")] = "1"
    vigil = make_vigil(make_config(tmp_path, models=models, policy=POLICY), registry=reg,
                       prometheus=incident_prometheus(bad_from=BAD_FROM, bad_until=bad_until))
    vigil.run_cycle(MODEL, T0 - 1200)
    reg.aliases[(MODEL, "champion")] = "2"
    for t in (T0 - 900, T0 - 600, T0 - 300):
        vigil.run_cycle(MODEL, t)
    reg.fail_set_alias = "MLflow answered 503"
    assert vigil.run_cycle(MODEL, T0).rollback["status"] == "pending"  # type: ignore[index]
    return vigil, reg


def _abandoned(vigil: Vigil, reg: MemoryRegistry, why: str) -> None:
    assert reg.moves == [] and reg.aliases[(MODEL, "champion")] == "2"
    action, *later = vigil.store.actions(model=MODEL)
    # an abandoned one leaves the incident armed: a later ask goes through the guards afresh
    assert all(a.status == "refused" for a in later), [(a.status, a.detail) for a in later]
    assert action.status == "failed", action.detail
    assert action.detail == f"abandoned: {why}, nothing moved", action.detail
    failed = [e for e in vigil.store.audit_entries() if e.action == "rollback.failed"]
    assert len(failed) == 1 and failed[0].detail["detail"] == action.detail


def test_a_rollback_stuck_until_its_incident_resolved_is_abandoned_not_moved(tmp_path: Path) -> None:
    vigil, reg = _stuck_rollback(tmp_path, bad_until=T0 + 90)
    for i in range(1, 8):
        vigil.run_cycle(MODEL, T0 + 60 * i)
    assert vigil.store.incident(1).status == "resolved"
    reg.fail_set_alias = None  # MLflow recovers
    vigil.run_cycle(MODEL, T0 + 60 * 8)
    vigil.run_cycle(MODEL, T0 + 60 * 9)
    _abandoned(vigil, reg, "incident 1 is resolved")


def test_a_rollback_turned_off_by_on_call_is_abandoned_after_the_reload(tmp_path: Path) -> None:
    vigil, reg = _stuck_rollback(tmp_path)
    off = {**POLICY, "rollback": {"enabled": False, "dry_run": True}}
    v2 = make_vigil(make_config(tmp_path, policy=off), registry=reg,
                    prometheus=incident_prometheus(bad_from=BAD_FROM), start=T0 + 60)
    reg.fail_set_alias = None
    v2.run_cycle(MODEL, T0 + 60)
    _abandoned(v2, reg, "automatic rollback was turned off since (policy.rollback.enabled: false)")
    assert [a.detail for a in v2.store.actions(model=MODEL)][1:] == ["guard: disabled"]


def test_a_model_put_back_days_later_does_not_roll_back_for_its_old_incident(tmp_path: Path) -> None:
    both = [model_config(), model_config("other")]
    vigil, reg = _stuck_rollback(tmp_path, bad_until=T0 + 60, models=both)
    prom = incident_prometheus(bad_from=BAD_FROM, bad_until=T0 + 60)
    v2 = make_vigil(make_config(tmp_path, models=[model_config("other")], policy=POLICY), registry=reg,
                    prometheus=prom, start=T0 + 600)
    reg.fail_set_alias = None
    v2.reconcile(T0 + 600)  # start-up without the model: its incident resolved as removed
    assert resolve_removed(v2).resolved == [1]
    v3 = make_vigil(make_config(tmp_path, models=both, policy=POLICY), registry=reg, prometheus=prom,
                    start=T0 + 3 * 86400)
    v3.reconcile(T0 + 3 * 86400)
    v3.run_cycle(MODEL, T0 + 3 * 86400)
    _abandoned(v3, reg, "incident 1 is resolved")


def test_a_move_that_landed_before_the_incident_resolved_is_recorded_done(tmp_path: Path) -> None:
    vigil, reg = _stuck_rollback(tmp_path, bad_until=T0 + 90)
    for i in range(1, 7):
        vigil.run_cycle(MODEL, T0 + 60 * i)
    assert vigil.store.incident(1).status == "resolved"
    reg.aliases[(MODEL, "champion")] = "1"  # a 503 whose write landed: MLflow moved it after all
    vigil.run_cycle(MODEL, T0 + 60 * 7)  # the first attempt since it resolved
    [action] = vigil.store.actions(model=MODEL)
    assert action.status == "done", action.detail
    assert reg.aliases[(MODEL, "champion")] == "1"
    assert [d.source for d in vigil.store.deploys(MODEL) if d.at >= T0] == ["rollback"]
