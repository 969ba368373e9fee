"""MLflow fully down: Vigil's automatic rollback never reached it (every attempt failed at
its first read) and gave up. After MLflow was back, on-call reverted the alias to v1 by hand;
the next poll took that revert for the failed rollback's move landing late: the action turned
"done" (actor vigil), `rollback.done` was audited, and the person's move was never recorded.
Only an attempt that may have reached the write (its answer lost) can have made a move; one
that failed reading moved nothing, and the revert is the person's."""
from __future__ import annotations

from pathlib import Path

from alerts.rollback import ActionStatus
from tests.helpers_vigil import MODEL, T0, incident_prometheus, make_config, make_vigil, serving_registry

BAD_FROM = T0 - 300


def test_a_revert_by_hand_after_a_rollback_that_never_reached_mlflow_is_the_persons(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, policy={"slo_consecutive_cycles": 2, "resolve_after_cycles": 2,
                                        "rollback": {"max_attempts": 3}})
    reg = serving_registry()
    vigil = make_vigil(cfg, registry=reg, prometheus=incident_prometheus(bad_from=BAD_FROM))
    vigil.run_cycle(MODEL, T0 - 1200)
    reg.aliases[(MODEL, "champion")] = "2"
    for t in (T0 - 900, T0 - 600, T0 - 300):
        vigil.run_cycle(MODEL, t)
    reg.down = True  # every read and write fails
    for i in range(5):
        vigil.run_cycle(MODEL, T0 + 60 * i)
    [action] = vigil.store.actions(model=MODEL)
    assert action.status == ActionStatus.FAILED and action.actor == "vigil", action.detail
    reg.down = False
    reg.aliases[(MODEL, "champion")] = "1"  # on-call reverts in the MLflow UI
    vigil.run_cycle(MODEL, T0 + 60 * 6)
    [action] = vigil.store.actions(model=MODEL)
    assert action.status == ActionStatus.FAILED, f"the person's revert was claimed: {action.detail}"
    assert "rollback.done" not in [e.action for e in vigil.store.audit_entries()]
    last = vigil.store.deploys(MODEL)[-1]
    # the person's move, answering the incident (a revert), not Vigil's rollback
    assert (last.version, last.previous_version, last.source) == ("1", "2", "response")
    assert reg.moves == []
