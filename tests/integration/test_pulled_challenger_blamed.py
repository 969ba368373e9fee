"""A canary pull moves the challenger alias away from a challenger that failed its canary:
that version stays blamed, so putting it on the champion alias through the rollback API
needs force and a reason (a promotion, unlike a pull, blames nothing)."""
from __future__ import annotations

from alerts.rollback import ActionStatus, choose_target
from monitor.config import RollbackPolicy
from monitor.cycle.known_good import target_facts
from monitor.store.intents import add_intent
from monitor.store.repository import Store
from tests.helpers_vigil import MODEL, T0, make_config


def test_a_pulled_challenger_stays_blamed(tmp_path):
    cfg = make_config(tmp_path)
    store = Store(cfg.store.url)
    with store.tx() as s:
        action = store.add_action(s, model=MODEL, kind="canary_pull", incident_id=None, from_version="3",
                                  to_version="2", status=ActionStatus.DONE, reason="canary v3 failed: ctr",
                                  detail="", actor="vigil", dry_run=False, at=T0)
        intent = add_intent(s, model=MODEL, incident_id=None, action_id=action.id, from_version="3", to_version="2",
                            executors=["mlflow"], fencing_token=None, actor="vigil", reason="canary v3 failed",
                            forced=False, max_attempts=1, next_attempt_at=T0, created_at=T0, updated_at=T0)
        intent.status = ActionStatus.DONE
    facts = target_facts(store, MODEL, RollbackPolicy(), T0 + 60)
    choice = choose_target(facts, asked="3")
    assert choice.version is None, f"the challenger the canary pulled is not blamed: {facts.blamed}, {choice}"
