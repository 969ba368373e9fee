"""A rollback recorded failed whose alias move a later poll of the registry reads (the
call reached MLflow and its answer was lost; the alias moved and a later layer failed for
good): the move is the rollback's own, never somebody's deploy or a suspect. With every
other layer verified at the target it is done after all; with one that never moved it
stays failed (the model is not served at the target), its alias move recorded."""
from __future__ import annotations

import logging
from typing import Protocol

from sqlalchemy.orm import Session

from alerts.rollback import ActionStatus, RollbackOutcome
from correlators.causes import older
from detectors.records import DeployEvent
from monitor.config import ModelConfig
from monitor.cycle.deploys import alias_of
from monitor.cycle.rollback_ask import CANARY_PROMOTE, ROLLBACK
from monitor.store.intents import RollbackIntentRow, has_served
from monitor.store.repository import Store

log = logging.getLogger("vigil.rollback")


class Finisher(Protocol):
    """What `landed` needs of monitor.cycle.rollback_intents.RollbackRunner (which imports
    this module: named here, the two would import each other)."""

    store: Store

    def finish(self, intent_id: int, m: ModelConfig, now: float, status: ActionStatus, detail: str
               ) -> RollbackOutcome: ...


def record_move(store: Store, s: Session, m: ModelConfig, intent: RollbackIntentRow, now: float, source: str) -> None:
    """The intent's move as a deploy event, and the alias's version as the model's state."""
    store.add_deploy(s, DeployEvent(m.name, m.alias, intent.to_version, intent.from_version, now, source))
    state = store.model_state(s, m.name)
    state.alias_version, state.alias_seen_at, state.alias_of = intent.to_version, now, alias_of(m)


def forward(s: Session, m: ModelConfig, intent: RollbackIntentRow, kind: str) -> bool:
    """Whether the intent's move is a promotion, a deploy like any other (cold start follows,
    and it can be blamed): a canary's, or a "rollback" to a version that never served (a
    challenger promoted, a fix forward, through the rollback API). A move back to a version
    that served, or to an older one (the store may postdate it), is a rollback: no suspect."""
    return kind == CANARY_PROMOTE or not (has_served(s, m.name, intent.to_version)
                                          or older(intent.to_version, intent.from_version))


def landed(runner: Finisher, intent_id: int, m: ModelConfig, now: float) -> None:
    """Record the alias move a poll read at `now` for the failed rollback `intent_id`."""
    with runner.store.tx() as s:
        intent = s.get(RollbackIntentRow, intent_id)
        if intent is None:
            return
        unmoved = [x for x in intent.executors[1:] if x not in intent.steps_done]  # [0] is the alias
        if unmoved:
            # a fix forward's alias move stays a suspect, as it would be once done
            record_move(runner.store, s, m, intent, now, "promotion" if forward(s, m, intent, ROLLBACK) else "rollback")
            log.warning("a failed rollback's alias move read; its other layers never moved",
                        extra={"model": m.name, "intent": intent_id, "unmoved": unmoved})
            return
    runner.finish(intent_id, m, now, ActionStatus.DONE,
                  "the alias was read at the target after the attempt gave up: the move was made")
