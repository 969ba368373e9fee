"""On-call stops a pending rollback (`vigil rollback cancel MODEL`,
`POST /v1/models/{name}/rollback/cancel`).

A rollback MLflow keeps refusing retries for `max_attempts` cycles, and people see "retrying";
until now they could only wait, or turn automatic rollback off and reload. A cancel ends the
intent the way an abandoned one ends (recorded failed, "cancelled by api:alice: <reason>,
nothing moved", told where the incident's messages are), with a `rollback.cancel` audit entry
under the person's name, in the same transaction: a crash leaves it pending or cancelled,
never half of it. Never a move reversed, nor one driven from here: a rollback whose alias
reads the target already (its move landed, the answer lost) is said so and left pending for the
replica that holds the model's lease, which verifies and records it under its fence (the
cancel drove it in the API's thread, unfenced, on a replica that may not hold the lease and
beside the holder's own cycle); one that moved a layer (or set one still rolling out) is left
to finish (stopping half-way leaves the registry and serving on different versions); one whose
alias cannot be read is not cancelled blind.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from alerts.rollback import ActionStatus
from monitor.config import ModelConfig
from monitor.cycle.rollback_ask import PROMOTION, ROLLBACK, audited, intent_kind
from monitor.cycle.rollback_pending import Driver, read_first, where_it_stands
from monitor.executors.base import ExecutorError
from monitor.store.audit_log import retry_audited
from monitor.store.intents import RollbackIntentRow, latest_intent_id, locked_intent, open_intents

CANCELLED, DONE, NONE, MOVING, UNREAD = "cancelled", "done", "none", "moving", "unread"


@dataclass(frozen=True)
class Cancelled:
    status: str  # CANCELLED; DONE (done already: nothing moved back); NONE, MOVING, UNREAD (nothing changed)
    detail: str
    intent_id: int | None = None
    from_version: str | None = None
    to_version: str | None = None
    incident_id: int | None = None


def cancel(runner: Driver, m: ModelConfig, actor: str, reason: str, now: float) -> Cancelled:
    """Cancel the model's pending rollback, if nothing of it has moved."""
    with runner.store.tx() as s:
        pending = open_intents(s, m.name)
        intent = pending[0] if pending else s.get(RollbackIntentRow, latest_intent_id(s, m.name))
        kind = intent_kind(s, intent) if intent is not None else ROLLBACK
        # A canary's pull or promotion is the canary's to end (a done rollback may read "promotion").
        if intent is None or kind not in (ROLLBACK, PROMOTION):
            busy = (f"; only canary action {pending[0].id} ({kind.replace('_', ' ')}) is pending, left alone"
                    if pending else "")
            return Cancelled(NONE, f"{m.name} has no rollback to cancel{busy}")
        said = _said(intent)
        first, moving, step = where_it_stands(intent, m)
    if said.status != ActionStatus.PENDING:
        return _finished(said)
    if moving or first is None:
        return replace(said, status=MOVING, detail=f"rollback {said.intent_id} has moved to v{said.to_version} in part "
                       "already; stopping it half-way would leave its layers on different versions: it finishes or "
                       "fails on its own; nothing cancelled")
    try:
        serving = read_first(runner, kind, m, first, step)
    except ExecutorError as e:
        return replace(said, status=UNREAD, detail=f"{first} cannot be read ({e.detail}): whether rollback "
                       f"{said.intent_id} moved it is unknown; nothing cancelled, ask again")
    if serving == said.to_version:  # it moved (an answer lost): never moved back, nor driven from here
        return replace(said, status=MOVING, detail=f"{first} reads v{said.to_version} already (rollback "
                       f"{said.intent_id}'s move landed, its answer lost): the replica that holds {m.name}'s lease "
                       "finishes and verifies it at its next cycle; nothing cancelled, nothing moved back")
    detail = f"cancelled by {actor}: {reason}, nothing moved"
    return retry_audited(lambda: _cancel_once(runner, said, m, actor, detail, now), "cancel a rollback")


def _cancel_once(runner: Driver, said: Cancelled, m: ModelConfig, actor: str, detail: str, now: float
                 ) -> Cancelled:
    with runner.store.tx() as s:
        intent = locked_intent(s, said.intent_id or 0)
        assert intent is not None
        if intent.status != ActionStatus.PENDING:  # finished by a cycle meanwhile
            return _finished(_said(intent))
        if intent.steps_done or intent.settling_since is not None:  # a cycle moved it since the read
            return replace(said, status=MOVING, detail=f"rollback {intent.id} moved in part since; nothing cancelled")
        runner.store.audit_in(s, actor, "rollback.cancel", f"model:{m.name}", {**audited(intent), "detail": detail},
                              now=now)
        intent.may_have_moved = False  # its alias was read at `from`: a move read later is a person's
        runner.finish_in(s, intent, m, now, ActionStatus.FAILED, detail)
    return replace(said, status=CANCELLED, detail=detail)


def _said(intent: RollbackIntentRow) -> Cancelled:
    return Cancelled(str(intent.status), intent.detail, intent.id, intent.from_version, intent.to_version,
                     intent.incident_id)


def _finished(said: Cancelled) -> Cancelled:
    """A rollback already over: said so, nothing moved back, nothing cancelled."""
    if said.status == ActionStatus.DONE:
        return replace(said, status=DONE, detail=f"rollback {said.intent_id} (v{said.from_version} -> "
                       f"v{said.to_version}) is done already ({said.detail}); nothing moved back")
    if said.status == ActionStatus.PENDING:  # still retrying after this attempt (MLflow refused it again)
        return replace(said, status=MOVING, detail=f"rollback {said.intent_id} is still in flight: {said.detail}")
    return replace(said, status=NONE, detail=f"rollback {said.intent_id} is {said.status} already ({said.detail}): "
                   "nothing pending to cancel")
