"""Stage 6, act: a rollback (or a canary's action) that moves nothing, recorded without an
intent (monitor/cycle/rollback_intents.py records the ones that move): a dry run, an alias
already at the target, a refusal (the alias moved since the ask; a `stay` ask that finds a
layer on another version), layers that cannot be built. Each is an action and two audit
entries, `requested` then its outcome, as a rollback that ran has: an SRE reading the audit
log sees every request, refused ones included."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from alerts.rollback import ActionStatus, RollbackOutcome
from monitor.cycle.rollback_ask import AUDIT, CANARY_PULL, ROLLBACK, RollbackAsk, moved_refusal, names, payload
from monitor.cycle.rollback_told import RollbackTeller
from monitor.executors.base import Executor
from monitor.metrics import VigilMetrics
from monitor.store.intents import AUTOMATIC
from monitor.store.repository import Store
from monitor.store.tables import ActionRow


def moved_since(ask: RollbackAsk, serving: str | None) -> str:
    """Why an ask that moves only from `only_from` (the blamed version, the one a button
    showed) moved nothing: the alias serves another version now, or reads as absent."""
    m = ask.model
    alias = m.canary.alias if ask.kind == CANARY_PULL and m.canary is not None else m.alias
    return moved_refusal(alias, serving, str(ask.only_from))


class Unmoved:
    def __init__(self, store: Store, told: RollbackTeller, metrics: VigilMetrics) -> None:
        self.store, self.told, self.metrics = store, told, metrics

    def record(self, s: Session, ask: RollbackAsk, serving: str | None, layers: list[Executor], *,
               refused: str | None = None, failed: str | None = None, already: bool = False) -> RollbackOutcome:
        """A dry run, an alias at the target (`already`: every layer serves it), a refusal
        (`refused`: its detail) or layers that cannot be built (`failed`): recorded, audited,
        nothing moves. `serving`: what the alias served when asked (None: unknown)."""
        m = ask.model
        if refused is not None and self._refused_before(s, ask, refused):
            return RollbackOutcome(ActionStatus.REFUSED, serving, ask.to_version, refused)
        if failed is not None:
            status, detail = ActionStatus.FAILED, f"{failed}; nothing was moved"
        elif refused is not None:
            status, detail = ActionStatus.REFUSED, refused
        elif ask.dry_run and not already:  # a dry run says what the real one would do: at the target, a no-op
            status, detail = ActionStatus.DRY_RUN, f"dry run: would move {names(layers)} from v{serving} " \
                                                   f"to v{ask.to_version}"
        else:
            where = f"'{m.alias}' already points at" if ask.kind == ROLLBACK else f"{names(layers)} already serve"
            status, detail = ActionStatus.NOOP, f"{'dry run: ' if ask.dry_run else ''}{where} v{ask.to_version}"
        action = self.store.add_action(s, model=m.name, kind=ask.kind, incident_id=ask.incident_id,
                                       from_version=serving, to_version=ask.to_version, status=status,
                                       reason=ask.reason, detail=detail, actor=ask.actor, dry_run=ask.dry_run,
                                       at=ask.now)
        detail_ = {"from_version": serving, "to_version": ask.to_version, "reason": ask.reason,
                   "incident_id": ask.incident_id, "dry_run": ask.dry_run, "forced": ask.forced}
        self.store.audit_in(s, ask.actor, f"{AUDIT[ask.kind]}.requested", f"model:{m.name}", detail_, now=ask.now)
        # The outcome with why: the log alone says why a request moved nothing.
        self.store.audit_in(s, ask.actor, f"{AUDIT[ask.kind]}.{status}", f"model:{m.name}",
                            {**detail_, "detail": detail}, now=ask.now)
        if status == ActionStatus.DRY_RUN:
            self.told.announce(s, m, ask.incident_id, payload(m, serving, ask.to_version, status, ask, detail),
                               f"dry-run:{ask.incident_id}:{int(ask.now)}", ask.now)
        elif status == ActionStatus.FAILED:
            self.told.announce(s, m, ask.incident_id, payload(m, serving, ask.to_version, status, ask, detail),
                               f"action:{action.id}", ask.now)
        self.count(ask.kind, m.name, status)
        return RollbackOutcome(status, serving, ask.to_version, detail)

    @staticmethod
    def _refused_before(s: Session, ask: RollbackAsk, detail: str) -> bool:
        """Vigil's own ask is made again every cycle while its incident stays open (a refusal
        settles nothing: it runs once the alias reads the blamed version again); its refusal
        is recorded and audited once per incident and reason, as actions.py's guard refusals."""
        if ask.actor != AUTOMATIC or ask.incident_id is None:
            return False
        q = select(ActionRow.id).where(ActionRow.incident_id == ask.incident_id,
                                       ActionRow.status == ActionStatus.REFUSED, ActionRow.detail == detail)
        return s.scalar(q.limit(1)) is not None

    def count(self, kind: str, model: str, status: str) -> None:
        if kind == ROLLBACK:
            self.metrics.rollbacks.labels(model, status).inc()
        else:
            self.metrics.canary_actions.labels(model, kind, status).inc()
