"""Stage 6, act: a rollback as a durable intent.

    record the intent (committed)  ->  for each layer: read, move if still on `from`, verify
    ->  record the outcome, the deploy event, the messages and the audit entry in one transaction

A crash at any line leaves either no intent (nothing moved), or a pending intent that
`reconcile` finishes at start-up and at the start of each of the model's cycles, if still
allowed (rollback_pending): layers at the target are verified, not moved again; a layer
moved elsewhere since is left alone and the intent fails saying what was found. Moving only
a layer still on `from_version` makes a retry, restart or second replica unable to repeat
or reverse a rollback.

A layer that cannot be reached keeps the intent pending (one message says so) until it answers
or `max_attempts` cycles tried; one rolling out (KServe, Argo) is waited for by time (`judge`).

The same machinery carries a canary's actions (monitor/cycle/canary.py), told apart by
the kind of the intent's action row: `canary_pull` moves the challenger's layers (its
alias removed, serving traffic pinned to the champion) from the challenger's version to
the champion's; `canary_promote` moves the champion's layers to the challenger's version.
Only `rollback` counts towards the rollback guard's cool-down and daily cap.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from alerts.rollback import ActionStatus, Move, RollbackOutcome, decide_move
from monitor.config import ModelConfig, VigilConfig
from monitor.cycle.messages import OutboxWriter
from monitor.cycle.model_locks import CycleRunning
from monitor.cycle.rollback_ask import (
    AUDIT,
    CANARY_PROMOTE,
    CANARY_PULL,
    FLEET_CAP,
    PROMOTION,
    ROLLBACK,
    RollbackAsk,
    audited,
    finished_first,
    half_moved,
    intent_kind,
    judge,
    landed_after_all,
    moved_layers,
    names,
    outcome_of,
    payload,
    superseded,
)
from monitor.cycle.rollback_landed import forward, record_move
from monitor.cycle.rollback_pending import drive_pending
from monitor.cycle.rollback_told import RollbackTeller
from monitor.cycle.rollback_unmoved import Unmoved, moved_since
from monitor.executors.base import SETTLING, Executor, ExecutorError, RollbackStep
from monitor.executors.guarded import guarded, preflight
from monitor.failpoints import failpoint
from monitor.metrics import VigilMetrics
from monitor.store import intents
from monitor.store.audit_log import retry_audited
from monitor.store.canary import settle_run
from monitor.store.intents import RollbackIntentRow, add_intent, latest_intent_id, locked_intent, open_intents
from monitor.store.repository import ActionRow, Store

log = logging.getLogger("vigil.rollback")

STEP_BUDGET_S = 30.0  # a rollback's calls to its layers in one cycle (or one request); then it resumes next cycle
Layers = Callable[[ModelConfig], list[Executor]]
Lease = Callable[[str, Callable[[], RollbackOutcome]], "RollbackOutcome | None"]  # (model, drive): None: not here
LayerHealth = Callable[[str, "ExecutorError | None"], None]  # (layer name, error or None when it answered)


class RollbackRunner:
    def __init__(self, store: Store, layers: Layers, outbox: OutboxWriter, metrics: VigilMetrics, *,
                 health: LayerHealth = lambda _layer, _error: None, pull_layers: Layers | None = None,
                 config: VigilConfig | None = None) -> None:
        self.store, self.layers, self.outbox, self.metrics = store, layers, outbox, metrics
        self.config = config  # a pending automatic rollback's guards, asked again (rollback_pending)
        self.told = RollbackTeller(outbox)
        self.unmoved = Unmoved(store, self.told, metrics)  # what moves nothing: recorded without an intent
        self.health = health  # a layer that cannot be reached makes /readyz say so
        self.pull_layers = pull_layers  # a canary pull's layers (the challenger's); None: no canaries
        self.step_budget_s = STEP_BUDGET_S
        self.lease: Lease = lambda _model, drive: drive()  # Vigil's: rollback_lease.drive_here

    def layers_for(self, kind: str, m: ModelConfig, deadline: float | None = None) -> list[Executor]:
        """A pull moves the challenger's layers; a rollback and a promotion the champion's.
        Guarded: a layer's unexpected exception is a failed attempt, not a stuck intent."""
        if kind == CANARY_PULL:
            if self.pull_layers is None:
                raise ValueError("a canary pull needs pull_layers")
            return guarded(self.pull_layers(m), deadline, self._before_write)
        return guarded(self.layers(m), deadline, self._before_write)

    @contextmanager
    def _before_write(self, step: RollbackStep) -> Iterator[Session]:
        """Checked right before each write to a layer: the lease (entering a transaction checks
        it) and the step's intent still pending; a cancel or an abandon recorded since the
        drive read it ends it, and the layer is not written (on-call was told nothing moved)."""
        with self.store.tx() as s:
            if step.key and not any(i.key == step.key for i in open_intents(s, step.model)):
                raise ExecutorError(False, f"rollback {step.key} of {step.model} ended while this attempt was on its "
                                           "way (cancelled or abandoned): not written", reason="ended", unmoved=True)
            yield s

    # ------------------------------------------------------------------ asking
    def request(self, ask: RollbackAsk) -> RollbackOutcome:
        """Record the intent, then drive it; a model has at most one rollback in flight."""
        m = ask.model
        deadline = time.monotonic() + self.step_budget_s  # the request's calls to the layers, all together
        try:
            layers = self.layers_for(ask.kind, m, deadline)
            preflight(layers)
        except ExecutorError as e:  # e.g. a missing kubeconfig: a failed rollback (nothing moved), not a failed cycle
            with self.store.tx() as s:
                last = self.store.model_state(s, m.name).alias_version
                return self.unmoved.record(s, ask, last, [], failed=f"cannot build the layers: {e.detail}")
        with self.store.tx() as s:
            seen = latest_intent_id(s, m.name)  # one recorded after this is another ask's, at once
        serving, unread = self._serving_now(layers[0], m, ask.to_version, ask.from_version)
        if unread and (ask.stay or ask.dry_run):  # a dry run can say nothing true; a stay nor move there unforced
            why = f"{layers[0].name} cannot be read ({unread})"
            why = f"dry run: {why}; what a rollback would move is unknown" if ask.dry_run else why
            if ask.dry_run and ask.actor == intents.AUTOMATIC:  # asked again next cycle; recorded, it would settle it
                return RollbackOutcome(ActionStatus.FAILED, serving, ask.to_version, f"{why}; nothing was moved")
            with self.store.tx() as s:  # failed, recorded and audited
                return self.unmoved.record(s, ask, serving, layers, failed=why)
        already, behind = self._off_target(layers, m, ask.to_version)
        if serving == ask.to_version and behind is not None:  # the alias is back (by hand), serving is not:
            serving = behind  # what the layers to move serve is what the rollback moves away from
        for _ in range(20):
            try:
                recorded: RollbackOutcome | int = self._record_intent(ask, layers, serving, already, seen)
                break
            except IntegrityError:  # a concurrent intent for this model (one at a time), or audit append
                recorded = self._in_flight(m)
                if recorded.status == ActionStatus.PENDING:
                    break
                time.sleep(0.01)
        if isinstance(recorded, RollbackOutcome):
            return recorded
        failpoint("rollback_after_intent")
        # This ask's own intent: a retry of the request is answered with its state, never a new one.
        # Driven only where this process may write the model's layers (rollback_lease); the wait spends no budget.
        intent_id, since = recorded, time.monotonic()
        try:
            outcome = self.lease(m.name, lambda: self.drive(intent_id, m, ask.now, deadline + time.monotonic() - since))
        except CycleRunning as e:  # never two drivers of one intent: the running cycle (or the next) moves it
            return replace(self._left_to(intent_id, e.who), intent_id=recorded, own=True)
        left = f"this replica does not hold {m.name}'s lease: the replica that does moves it at its next cycle"
        return replace(outcome or self._left_to(intent_id, left), intent_id=recorded, own=True)

    def _left_to(self, intent_id: int, who: str) -> RollbackOutcome:
        with self.store.tx() as s:
            intent = s.get(RollbackIntentRow, intent_id)
            assert intent is not None
            if intent.status != ActionStatus.PENDING:
                return outcome_of(intent)
            return RollbackOutcome(ActionStatus.PENDING, intent.from_version, intent.to_version,
                                   f"rollback {intent_id} recorded; {who}", intent_id)

    def _in_flight(self, m: ModelConfig) -> RollbackOutcome:
        with self.store.tx() as s:
            busy = open_intents(s, m.name)
            if not busy:
                return RollbackOutcome(ActionStatus.FAILED, None, "?", "a concurrent rollback finished first; "
                                                                       "ask again to see where the model is")
            i = busy[0]
            return RollbackOutcome(ActionStatus.PENDING, i.from_version, i.to_version,
                                   f"rollback {i.id} by {i.actor} (v{i.from_version} -> v{i.to_version}) is still "
                                   "in flight", i.id)

    def _record_intent(self, ask: RollbackAsk, layers: list[Executor], serving: str | None, already: bool,
                       seen: int) -> RollbackOutcome | int:
        """The intent's id once committed, or the outcome when no intent is needed, one is in
        flight, or one recorded since intent `seen` finished first (its outcome, not a second)."""
        m = ask.model
        with self.store.tx() as s:
            if open_intents(s, m.name):
                return self._in_flight(m)
            if not ask.dry_run and (first := finished_first(s, m.name, seen, ask.to_version, ask.kind)) is not None:
                return first
            if ask.stay and not already:  # asked for the blamed version serving; a layer serves another
                stayed = ask.stay_refused(layers, serving)  # or a layer could not be read: failed
                refused = stayed.status == ActionStatus.REFUSED
                return self.unmoved.record(s, ask, serving, layers, refused=stayed.detail if refused else None,
                                           failed=None if refused else stayed.detail)
            if ask.dry_run or already:
                return self.unmoved.record(s, ask, serving, layers, already=already)
            if ask.only_from is not None and serving != ask.only_from:  # read as absent too: no check skipped
                return self.unmoved.record(s, ask, serving, layers, refused=moved_since(ask, serving))
            if ask.fleet_cap is not None and (full := ask.fleet_cap.reached(s, ask.now)):
                return RollbackOutcome(ActionStatus.REFUSED, serving, ask.to_version, f"{FLEET_CAP}: {full}")
            action = self.store.add_action(s, model=m.name, kind=ask.kind, incident_id=ask.incident_id,
                                           from_version=serving, to_version=ask.to_version,
                                           status=ActionStatus.PENDING, reason=ask.reason, detail="in flight",
                                           actor=ask.actor, dry_run=False, at=ask.now)
            intent = add_intent(s, model=m.name, incident_id=ask.incident_id, action_id=action.id,
                                from_version=serving, to_version=ask.to_version,
                                executors=[x.name for x in layers], fencing_token=self.store.fencing_token(),
                                actor=ask.actor, reason=ask.reason, forced=ask.forced, next_attempt_at=ask.now,
                                max_attempts=ask.max_attempts, created_at=ask.now, updated_at=ask.now)
            self.store.audit_in(s, ask.actor, "rollback.forced" if ask.forced else f"{AUDIT[ask.kind]}.requested",
                                f"model:{m.name}", audited(intent), now=ask.now)
            if ask.on_recorded is not None:
                ask.on_recorded(s, intent)
            return intent.id

    def _serving_now(self, alias: Executor, m: ModelConfig, to_version: str, expected: str | None
                     ) -> tuple[str | None, str]:
        """The alias's version now, and "" ; when the registry cannot say, the last one seen
        and why not (the intent then records our best knowledge and the compare-and-set
        catches a difference)."""
        try:
            return alias.current(RollbackStep(m.name, m.registry, None, to_version, "")), ""
        except ExecutorError as e:
            if expected is not None:
                return expected, str(e) or type(e).__name__
            with self.store.tx() as s:
                return self.store.model_state(s, m.name).alias_version, str(e) or type(e).__name__

    @staticmethod
    def _off_target(layers: list[Executor], m: ModelConfig, to_version: str) -> tuple[bool, str | None]:
        """Whether every layer serves `to_version` already; else what the first that does not serves."""
        step = RollbackStep(m.name, m.registry, None, to_version, "")
        try:
            off = [v for v in (x.current(step) for x in layers) if v != to_version]
        except ExecutorError:
            return False, None
        return not off, off[0] if off else None

    # ------------------------------------------------------------------ acting
    def drive(self, intent_id: int, m: ModelConfig, now: float, deadline: float | None = None) -> RollbackOutcome:
        """Take a pending intent as far as it goes now (until `deadline`, time.monotonic():
        by default step_budget_s from now; what is left waits for the next cycle)."""
        deadline = time.monotonic() + self.step_budget_s if deadline is None else deadline
        with self.store.tx() as s:
            intent = s.get(RollbackIntentRow, intent_id)
            assert intent is not None
            if intent.status != ActionStatus.PENDING:
                return outcome_of(intent)
            step = RollbackStep(m.name, m.registry, intent.from_version, intent.to_version, intent.key,
                                incident_id=intent.incident_id, requested_at=intent.created_at)
            kind = intent_kind(s, intent)
        layer: Executor | None = None
        try:
            # Layers that cannot be built (the canary gone from the config) end the intent: a
            # pending one would block every other action of the model.
            layers = self.layers_for(kind, m, deadline)
            for layer in [x for x in layers if x.name in intent.executors and x.name not in intent.steps_done]:
                failpoint("before_layer_move")
                if (ended := self._ended(intent_id)) is not None:
                    return ended
                moved = self._move(layer, step, intent_id, now)
                self._step_done(intent_id, layer.name, now, done=moved)  # superseded: not set to v{to} either
                if not moved:
                    return self.finish(intent_id, m, now, ActionStatus.FAILED, superseded(layer, step))
                self.health(layer.name, None)
        except ExecutorError as e:
            if layer is not None and e.reason != "deadline":  # not asked, out of time: no news of the layer
                self.health(layer.name, None if e.reason == SETTLING else e)  # settling: it answered
            return self.retry_later(intent_id, m, now, e)
        return self.finish(intent_id, m, now, ActionStatus.DONE,
                           f"moved {names(layers)} from v{step.from_version} to v{step.to_version}"
                           " and verified")

    def _ended(self, intent_id: int) -> RollbackOutcome | None:
        """Checked before each layer moves, not only the first: the lease (the fence, in a cycle)
        and the intent. A replica paused past its lease raises `LeaseLost` here: another may have
        finished it since, and a person rolled the layer forward again, which this would reverse."""
        with self.store.tx() as s:
            intent = s.get(RollbackIntentRow, intent_id)
            assert intent is not None
            return None if intent.status == ActionStatus.PENDING else outcome_of(intent)

    def _move(self, layer: Executor, step: RollbackStep, intent_id: int, now: float) -> bool:
        """Move one layer if it still serves `from`, then verify; False if somebody moved it elsewhere."""
        move = decide_move(layer.current(step), step.from_version, step.to_version)
        if move == Move.SUPERSEDED:
            return False
        if move != Move.ALREADY:
            layer.apply(step)
            failpoint("after_alias_move" if layer.name == "mlflow_alias" else "after_serving_change")
        self._step_done(intent_id, layer.name, now, None)  # set: a read then unanswered is no news it is not
        seen = layer.verify(step)
        if not (seen.ok and seen.settled):  # settling: set to the target, its controller rolling it out
            said = "is set to v{}, not yet in effect" if seen.ok else "does not serve v{} after the move"
            raise ExecutorError(True, f"{layer.name} {said.format(step.to_version)}: {seen.detail}",
                                reason=SETTLING if seen.ok else "failed")
        return True

    def _step_done(self, intent_id: int, layer: str, now: float, done: bool | None) -> None:
        with self.store.tx() as s:
            intents.record_step(s, intent_id, layer, now, done)

    def retry_later(self, intent_id: int, m: ModelConfig, now: float, e: ExecutorError) -> RollbackOutcome:
        return retry_audited(lambda: self._retry_later_once(intent_id, m, now, e), "record a rollback attempt")

    def _retry_later_once(self, intent_id: int, m: ModelConfig, now: float, e: ExecutorError) -> RollbackOutcome:
        with self.store.tx() as s:
            intent = locked_intent(s, intent_id)
            assert intent is not None
            if intent.status != ActionStatus.PENDING:  # another replica finished it meanwhile
                return outcome_of(intent)
            intent.attempts += 1
            action = s.get(ActionRow, intent.action_id) if intent.action_id else None
            attempt = judge(intent, action, e, now)
            if attempt.gave_up is not None:
                return self.finish_in(s, intent, m, now, ActionStatus.FAILED, attempt.gave_up)
            first_failure = not intent.detail
            intent.detail, intent.updated_at = e.detail, now
            if action is not None:
                action.detail = attempt.retrying
            if first_failure and e.reason == SETTLING:  # set, its controller rolling it out: no failure
                self.told.update_incident(s, m, intent.incident_id, now)
            elif first_failure:  # once, not per attempt: people learn it is stuck, then its outcome
                kind = action.kind if action is not None else ROLLBACK
                ask = RollbackAsk(m, intent.to_version, intent.reason, intent.actor, intent.incident_id, now, kind=kind)
                said = payload(m, intent.from_version, intent.to_version, ActionStatus.PENDING, ask,
                               action.detail if action is not None else e.detail, moved_layers(intent))
                self.told.retrying(s, m, intent.incident_id, said, f"intent:{intent.id}:retrying", now)
            outcome = outcome_of(intent)
        log.warning("rollback attempt failed", extra={"model": m.name, "intent": intent_id, "error": e.detail})
        return outcome

    def finish(self, intent_id: int, m: ModelConfig, now: float, status: ActionStatus, detail: str) -> RollbackOutcome:
        """The outcome in one transaction, written again if another writer's audit entry took its seq."""
        return retry_audited(lambda: self._finish_once(intent_id, m, now, status, detail), "record a rollback")

    def _finish_once(self, intent_id: int, m: ModelConfig, now: float, status: ActionStatus, detail: str
                     ) -> RollbackOutcome:
        with self.store.tx() as s:
            intent = locked_intent(s, intent_id)
            assert intent is not None
            if intent.status != ActionStatus.PENDING and not landed_after_all(s, intent, status):
                return outcome_of(intent)  # another replica finished it meanwhile
            recorded = False
            if intent.status == ActionStatus.FAILED:
                detail = f"{detail} (recorded failed before: {intent.detail})"
                # a poll since read its alias move and recorded it (rollback_landed): once is enough
                recorded = self.store.model_state(s, m.name).alias_version == intent.to_version
            return self.finish_in(s, intent, m, now, status, detail, recorded=recorded)

    def finish_in(self, s: Session, intent: RollbackIntentRow, m: ModelConfig, now: float, status: ActionStatus,
                   detail: str, *, recorded: bool = False) -> RollbackOutcome:
        """The outcome, its deploy event (unless `recorded` already), messages and audit entry: one transaction."""
        if status == ActionStatus.FAILED:
            detail += half_moved(intent)
        intent.status, intent.detail, intent.updated_at = status, detail, now
        action = s.get(ActionRow, intent.action_id) if intent.action_id else None
        if action is not None:
            action.status, action.detail = status, detail
        kind = action.kind if action is not None else ROLLBACK
        if kind in (CANARY_PULL, CANARY_PROMOTE):  # done: the run says so; failed: canary.py's "pulled" was not
            done_as = ("pulled" if kind == CANARY_PULL else "promoted") if status == ActionStatus.DONE else None
            settle_run(s, m.name, intent.from_version if kind == CANARY_PULL else intent.to_version, done_as,
                       f"{intent.reason} -> {detail}" if done_as else f"{kind} failed: {detail}", now)  # why, too
        ask = RollbackAsk(m, intent.to_version, intent.reason, intent.actor, intent.incident_id, now, kind=kind)
        said = payload(m, intent.from_version, intent.to_version, status, ask, detail,
                       intent.executors if status == ActionStatus.DONE else moved_layers(intent))
        if status == ActionStatus.DONE and kind == CANARY_PULL:
            self.told.announce(s, m, intent.incident_id, said, f"intent:{intent.id}", now)
        elif status == ActionStatus.DONE:
            ahead = forward(s, m, intent, kind)  # a promotion, or a rollback to where it served
            if ahead and action is not None and kind == ROLLBACK:
                # shown as a promotion; uses up no cool-down and blames nothing it replaced
                action.kind = PROMOTION
            if not recorded:
                record_move(self.store, s, m, intent, now, "promotion" if ahead else "rollback")
            self.told.announce(s, m, intent.incident_id, said, f"intent:{intent.id}", now)
        elif status == ActionStatus.FAILED:  # the timeline, a change-management hook, must hear of it too
            self.told.announce(s, m, intent.incident_id, said, f"intent:{intent.id}", now)
        else:
            self.told.tell(s, m, intent.incident_id, said, f"intent:{intent.id}", now)
        self.store.audit_in(s, intent.actor, f"{AUDIT.get(kind, 'rollback')}.{status}", f"model:{m.name}",
                            {**audited(intent), "detail": detail}, now=now)
        self.unmoved.count(kind, m.name, status)
        log.info("%s %s", kind, status, extra={"model": m.name, "intent": intent.id, "detail": detail})
        return outcome_of(intent)

    # ------------------------------------------------------------------ after a crash
    def reconcile(self, m: ModelConfig, now: float) -> list[RollbackOutcome]:
        """Finish what a crash, an outage or another replica left pending for this model."""
        with self.store.tx() as s:
            ids = [i.id for i in open_intents(s, m.name)]
        return [drive_pending(self, self.config, i, m, now) for i in ids]  # if still allowed

    def in_flight(self, model: str) -> bool:
        with self.store.tx() as s:
            return bool(open_intents(s, model))
