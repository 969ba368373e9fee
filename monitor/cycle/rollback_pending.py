"""A pending rollback, before each of its later attempts (a cycle's `reconcile`, start-up's):
is what allowed it still so?

The guard judged an automatic rollback once, when its intent was recorded. One that MLflow
kept refusing (503 on set_alias) was then driven whenever MLflow came back: after the
incident resolved, after on-call turned automatic rollback off (or to dry run) and reloaded,
inside a maintenance window, days later when its model was put back in the configuration.
So before each attempt of Vigil's own rollback the guards that can change are asked again:
`policy.rollback.enabled` and `dry_run` in the configuration now, the model's maintenance
windows, the incident still open. One no longer allowed is abandoned: recorded failed
("abandoned: <why>, nothing moved"), audited and told like any outcome, in one transaction.
Any pending intent, a person's too, that moved nothing within `policy.rollback.pending_ttl`
(30 min) is abandoned the same way: a daemon started again after hours, or MLflow back after
a long outage, no longer makes a move judged right before it.

Never a move reversed, never one left half-way: an intent that moved a layer already (or set
one still rolling out) is driven to its end as before; one whose first layer reads the target
already (the move landed, its answer lost) is driven too, which verifies it and records it
done. A first layer that cannot be read is a failed attempt (counted, given up after
`max_attempts`), never abandoned blind: nothing is said to have stayed unmoved unread.
"""
from __future__ import annotations

from typing import Protocol

from sqlalchemy.orm import Session

from alerts.lifecycle import IncidentStatus
from alerts.rollback import ActionStatus, RollbackOutcome
from alerts.time_intervals import active_names
from monitor.config import ModelConfig, VigilConfig
from monitor.cycle.rollback_ask import ROLLBACK, intent_kind
from monitor.executors.base import Executor, ExecutorError, RollbackStep
from monitor.failpoints import failpoint
from monitor.store.intents import AUTOMATIC, RollbackIntentRow, read_unmoved
from monitor.store.repository import IncidentRow, Store

ABANDONED = "abandoned"  # the detail's first word: recorded failed, nothing moved


class Driver(Protocol):
    """What this needs of monitor.cycle.rollback_intents.RollbackRunner (which imports this
    module: named here, the two would import each other)."""

    store: Store

    def drive(self, intent_id: int, m: ModelConfig, now: float, deadline: float | None = None
              ) -> RollbackOutcome: ...

    def layers_for(self, kind: str, m: ModelConfig, deadline: float | None = None) -> list[Executor]: ...

    def retry_later(self, intent_id: int, m: ModelConfig, now: float, e: ExecutorError) -> RollbackOutcome: ...

    def finish(self, intent_id: int, m: ModelConfig, now: float, status: ActionStatus, detail: str
               ) -> RollbackOutcome: ...

    def finish_in(self, s: Session, intent: RollbackIntentRow, m: ModelConfig, now: float, status: ActionStatus,
                  detail: str) -> RollbackOutcome: ...


def why_stop(config: VigilConfig, s: Session, intent: RollbackIntentRow, kind: str, now: float) -> str | None:
    """The pending intent's outcome's detail if it must move nothing more, or None while it may go on."""
    m = next((x for x in config.models if x.name == intent.model), None)
    policy = config.policy_for(m).rollback if m is not None else config.policy.rollback
    # Vigil's own rollback only: a person's ask, a canary's action are judged by the TTL alone.
    if intent.actor == AUTOMATIC and kind == ROLLBACK and (why := _guard_now(config, s, intent, m, now)):
        return f"{ABANDONED}: {why}, nothing moved"
    if now - intent.created_at >= policy.pending_ttl:
        last = f"; last attempt: {intent.detail}" if intent.detail else ""
        return (f"{ABANDONED}: not done within {policy.pending_ttl / 60:g} min (policy.rollback.pending_ttl"
                f"{last}), nothing moved; roll back by hand or ask again")
    return None


def _guard_now(config: VigilConfig, s: Session, intent: RollbackIntentRow, m: ModelConfig | None,
               now: float) -> str | None:
    """What allowed Vigil's own rollback, asked again now."""
    if m is None:
        return "the model is no longer in the configuration"
    policy = config.policy_for(m).rollback
    if not policy.enabled:
        return "automatic rollback was turned off since (policy.rollback.enabled: false)"
    if policy.dry_run:
        return "automatic rollback was set to dry run since (policy.rollback.dry_run: true)"
    windows = active_names({x.name: x.named() for x in config.time_intervals}, m.mute_time_intervals, now)
    if windows:
        return f"maintenance window {', '.join(windows)} is active"
    row = s.get(IncidentRow, intent.incident_id) if intent.incident_id is not None else None
    if row is not None and row.status != IncidentStatus.OPEN:
        return f"incident {row.id} is {row.status}"
    return None


def where_it_stands(intent: RollbackIntentRow, m: ModelConfig) -> tuple[str | None, bool, RollbackStep]:
    """A pending intent's first layer not yet moved, whether any layer moved or is rolling
    out already (`moving`: never stopped half-way), and the step that reads that layer."""
    first = next((x for x in intent.executors if x not in intent.steps_done), None)
    moving = bool(intent.steps_done) or intent.settling_since is not None
    return first, moving, RollbackStep(m.name, m.registry, intent.from_version, intent.to_version, intent.key,
                                       incident_id=intent.incident_id, requested_at=intent.created_at)


def read_first(runner: Driver, kind: str, m: ModelConfig, first: str, step: RollbackStep) -> str | None:
    """The version the first unmoved layer serves now; ExecutorError when it cannot be read."""
    layer = next((x for x in runner.layers_for(kind, m) if x.name == first), None)
    return layer.current(step) if layer is not None else None


def drive_pending(runner: Driver, config: VigilConfig | None, intent_id: int, m: ModelConfig,
                  now: float) -> RollbackOutcome:
    """One later attempt of a pending intent: driven if still allowed (or already moving), else abandoned."""
    with runner.store.tx() as s:
        intent = s.get(RollbackIntentRow, intent_id)
        assert intent is not None
        kind = intent_kind(s, intent)
        why = None if config is None or intent.status != ActionStatus.PENDING else why_stop(config, s, intent,
                                                                                            kind, now)
        first, moving, step = where_it_stands(intent, m)
    if why is None or moving or first is None:
        return runner.drive(intent_id, m, now)
    try:
        serving = read_first(runner, kind, m, first, step)
    except ExecutorError as e:  # unread: maybe moved by an attempt whose answer was lost
        return runner.retry_later(intent_id, m, now, e)
    if serving == intent.to_version:  # it moved: verified and recorded done, as any attempt's
        return runner.drive(intent_id, m, now)
    with runner.store.tx() as s:  # read at `from`: a lost answer moved nothing (a later move is another's)
        read_unmoved(s, intent_id)
    failpoint("before_abandon")  # a crash here leaves it pending: the next attempt judges it again
    return runner.finish(intent_id, m, now, ActionStatus.FAILED, why)
