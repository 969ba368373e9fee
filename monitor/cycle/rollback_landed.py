"""A rollback recorded failed whose alias move a later poll of the registry reads (the
call reached MLflow and its answer was lost; the alias moved and a later layer failed for
good): the move is the rollback's own, never somebody's deploy or a suspect. With every
other layer verified at the target it is done after all; with one that never moved it
stays failed (the model is not served at the target), its alias move recorded."""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from alerts.rollback import ActionStatus
from detectors.records import DeployEvent
from monitor.config import ModelConfig
from monitor.cycle.deploys import alias_of
from monitor.store.intents import RollbackIntentRow
from monitor.store.repository import Store

if TYPE_CHECKING:
    from monitor.cycle.rollback_intents import RollbackRunner

log = logging.getLogger("vigil.rollback")


def record_move(store: Store, s: Session, m: ModelConfig, intent: RollbackIntentRow, now: float, source: str) -> None:
    """The intent's move as a deploy event, and the alias's version as the model's state."""
    store.add_deploy(s, DeployEvent(m.name, m.alias, intent.to_version, intent.from_version, now, source))
    state = store.model_state(s, m.name)
    state.alias_version, state.alias_seen_at, state.alias_of = intent.to_version, now, alias_of(m)


def landed(runner: RollbackRunner, intent_id: int, m: ModelConfig, now: float) -> None:
    """Record the alias move a poll read at `now` for the failed rollback `intent_id`."""
    with runner.store.tx() as s:
        intent = s.get(RollbackIntentRow, intent_id)
        if intent is None:
            return
        unmoved = [x for x in intent.executors[1:] if x not in intent.steps_done]  # [0] is the alias
        if unmoved:
            record_move(runner.store, s, m, intent, now, "rollback")
            log.warning("a failed rollback's alias move read; its other layers never moved",
                        extra={"model": m.name, "intent": intent_id, "unmoved": unmoved})
            return
    runner.finish(intent_id, m, now, ActionStatus.DONE,
                  "the alias was read at the target after the attempt gave up: the move was made")
