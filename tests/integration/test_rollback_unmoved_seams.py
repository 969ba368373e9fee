"""A rollback ended with nothing moved (cancelled by on-call, abandoned past its TTL or by a
guard) after MLflow had refused its set_alias (503): what moves next is somebody else's, it
takes no slot of the fleet's cap, and it leaves the incident's automatic rollback armed."""
from __future__ import annotations

from pathlib import Path

from alerts.rollback import ActionStatus
from monitor.cycle.rollback_ask import FleetCap, RollbackAsk
from monitor.cycle.rollback_cancel import cancel
from monitor.store.intents import AUTOMATIC
from tests.helpers_vigil import MODEL, T0, MemoryRegistry, make_config, make_vigil, model_config, serving_registry


def _refused_once(tmp_path: Path) -> tuple:
    """A person's rollback v2 -> v1 that MLflow refused (503): pending, may have moved."""
    cfg = make_config(tmp_path)
    reg = serving_registry(version="2")
    vigil = make_vigil(cfg, registry=reg)
    m = cfg.model(MODEL)
    vigil.run_cycle(MODEL, T0)
    reg.fail_set_alias = "503"
    out = vigil.operator.rollback(RollbackAsk(m, "1", "bad release", "api:alice", None, T0 + 10, max_attempts=100))
    assert out.status == ActionStatus.PENDING
    reg.fail_set_alias = None
    return vigil, reg, m


def _after_manual_revert(vigil, reg, now: float) -> list:  # type: ignore[no-untyped-def]
    reg.aliases[(MODEL, "champion")] = "1"  # the person reverts in the MLflow UI, as told to
    vigil.run_cycle(MODEL, now)
    return [(a.status, a.detail) for a in vigil.store.actions(model=MODEL)]


def test_a_manual_revert_after_a_cancel_is_not_announced_as_vigils_rollback(tmp_path: Path) -> None:
    vigil, reg, m = _refused_once(tmp_path)
    c = cancel(vigil.rollbacks, m, "api:bob", "doing it by hand", T0 + 20)
    assert c.status == "cancelled"
    actions = _after_manual_revert(vigil, reg, T0 + 60)
    assert [s for s, _ in actions] == [ActionStatus.FAILED], actions
    assert actions[0][1].startswith("cancelled by api:bob")
    assert "rollback.done" not in [e.action for e in vigil.store.audit_entries()]


def test_a_manual_revert_after_a_ttl_abandon_is_not_announced_as_vigils_rollback(tmp_path: Path) -> None:
    vigil, reg, m = _refused_once(tmp_path)
    vigil.rollbacks.reconcile(m, T0 + 31 * 60)  # past pending_ttl: abandoned, "roll back by hand"
    actions = _after_manual_revert(vigil, reg, T0 + 32 * 60)
    assert [s for s, _ in actions] == [ActionStatus.FAILED], actions
    assert actions[0][1].startswith("abandoned: not done within 30 min")
    assert "rollback.done" not in [e.action for e in vigil.store.audit_entries()]


def test_a_cancelled_rollback_that_moved_nothing_takes_no_slot_of_the_fleet_cap(tmp_path: Path) -> None:
    reg = MemoryRegistry()
    vigil = make_vigil(make_config(tmp_path, models=[model_config(n) for n in ("a", "b")]), registry=reg)
    for n in ("a", "b"):
        for v in ("1", "2"):
            reg.add_version(n, v, created_at=T0 - 86400 * 30)
        reg.aliases[(n, "champion")] = "2"
    cap = FleetCap(1, 3600)
    reg.fail_set_alias = "503"
    out = vigil.rollbacks.request(RollbackAsk(vigil.config.model("a"), "1", "auto", AUTOMATIC, None, T0,
                                              max_attempts=10, fleet_cap=cap))
    assert out.status == ActionStatus.PENDING
    reg.fail_set_alias = None
    assert cancel(vigil.rollbacks, vigil.config.model("a"), "api:alice", "stop it", T0 + 60).status == "cancelled"
    out = vigil.rollbacks.request(RollbackAsk(vigil.config.model("b"), "1", "auto", AUTOMATIC, None, T0 + 120,
                                              max_attempts=10, fleet_cap=cap))
    assert out.status == ActionStatus.DONE, out.detail
    assert reg.aliases[("b", "champion")] == "1" and reg.aliases[("a", "champion")] == "2"


def test_an_abandoned_automatic_rollback_leaves_a_still_critical_incident_armed(tmp_path: Path) -> None:
    from tests.integration.test_rollback_pending_recheck import _stuck_rollback

    vigil, reg = _stuck_rollback(tmp_path)  # critical, Vigil's rollback v2 -> v1 refused (503)
    reg.fail_set_alias = None
    m = vigil.config.model(MODEL)
    vigil.rollbacks.reconcile(m, T0 + 31 * 60)  # the daemon back past pending_ttl: abandoned
    [abandoned] = vigil.store.actions(model=MODEL)
    assert abandoned.status == ActionStatus.FAILED and abandoned.detail.startswith("abandoned:")
    vigil.run_cycle(MODEL, T0 + 32 * 60)  # still critical: asked afresh, and it moves now
    assert reg.aliases[(MODEL, "champion")] == "1", [(a.status, a.detail) for a in vigil.store.actions(model=MODEL)]
    assert [a.status for a in vigil.store.actions(model=MODEL)] == [ActionStatus.FAILED, ActionStatus.DONE]
