"""The fleet cap's refusal stands for the rest of its incident (people decide, README), but
it stood for every version: v3, released into an incident whose v2 the cap refused and
regressing in turn, was silently not rolled back. It stands for the version it refused."""
from __future__ import annotations

from pathlib import Path

from alerts.pipeline import AlertPlan
from alerts.policy import RollbackVerdict
from alerts.rollback import ActionStatus, TargetFacts
from monitor.cycle.rollback_ask import FLEET_CAP
from monitor.store.tables import IncidentRow
from tests.helpers_vigil import MODEL, T0, make_config, make_vigil, serving_registry


def _vigil_with_cap_refusal_of_v2(tmp_path: Path, serving: str) -> tuple:  # type: ignore[type-arg]
    reg = serving_registry(version=serving, versions=("1", "2", "3"))
    vigil = make_vigil(make_config(tmp_path), registry=reg)
    with vigil.store.tx() as s:
        s.add(IncidentRow(id=7, model=MODEL, status="open", severity="critical", title="kpi", onset=T0 - 900,
                          opened_at=T0 - 900, updated_at=T0 - 900, resolved_at=None, fingerprint="f",
                          reasons=[], findings=[], causes=[]))
        s.flush()
        vigil.store.add_action(s, model=MODEL, kind="rollback", incident_id=7, from_version="2", to_version="1",
                               status=ActionStatus.REFUSED, reason="cap", detail=FLEET_CAP, actor="vigil",
                               dry_run=False, at=T0 - 600)
    # v1 served cleanly before v2 and v3: the target the rollback chooses
    vigil.operator.target_facts = lambda m, t: TargetFacts(serving, ["1"], {"2": "incident 7"})  # type: ignore
    return vigil, reg


def test_a_later_version_regressing_in_the_same_incident_is_rolled_back(tmp_path: Path) -> None:
    vigil, reg = _vigil_with_cap_refusal_of_v2(tmp_path, "3")
    plan = AlertPlan(rollback=RollbackVerdict(True, False, "v3 regressed", to_version="1", from_version="3"))
    out = vigil.operator.follow_plan(vigil.config.model(MODEL), 7, plan, T0)
    assert out is not None and out["status"] == ActionStatus.DONE, out
    assert reg.aliases[(MODEL, "champion")] != "3" and reg.moves, reg.moves


def test_the_version_the_cap_refused_is_still_left_to_people(tmp_path: Path) -> None:
    vigil, reg = _vigil_with_cap_refusal_of_v2(tmp_path, "2")
    plan = AlertPlan(rollback=RollbackVerdict(True, False, "v2 regressed", to_version="1", from_version="2"))
    assert vigil.operator.follow_plan(vigil.config.model(MODEL), 7, plan, T0) is None
    assert reg.aliases[(MODEL, "champion")] == "2" and reg.moves == []
