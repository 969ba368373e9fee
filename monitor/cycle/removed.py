"""Open incidents of models no longer in the configuration, resolved.

A model's incident is resolved by its own cycles; a model taken out of vigil.yaml (a
SIGHUP, or a restart with the new file) has none any more, so its open incident stayed
open for ever: the pager triggered, Alertmanager's keep-alive re-pushing it, Slack showing
it open, its shared-cause group never closing. At start-up and on each applied reload the
daemon resolves them here, the way a cycle's resolve goes (monitor/cycle/apply.py): the
row, its group and its outbox rows commit together, with an audit entry.

Exactly once among replicas: the incident row is locked (`tables.locked_row`) and read
again, so a second replica doing the same waits, then finds it resolved and sends nothing.
A rolling change is safe: a model whose lease another live replica holds is still watched
there (its file still has it), so it is left to that replica and tried again on the next
lease tick; its lease row is held FOR SHARE, so no takeover commits in between.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

from sqlalchemy import select

from alerts.lifecycle import IncidentStatus, last_told
from monitor.store import audit_log, leases
from monitor.store.tables import IncidentRow, ModelStateRow, locked_row

if TYPE_CHECKING:
    from monitor.vigil import Vigil

log = logging.getLogger("vigil.removed")
REASON = "model removed from the configuration"


@dataclass(frozen=True)
class RemovedSweep:
    resolved: list[int] = field(default_factory=list)  # incident ids resolved now
    deferred: list[str] = field(default_factory=list)  # models another replica still runs, or a failure


def resolve_removed(vigil: Vigil, configured: set[str] | None = None, me: str | None = None) -> RemovedSweep:
    """Resolve every open incident whose model is not in `configured` (the Vigil's models);
    `me`: this replica's id, whose own leases do not count as another replica's."""
    names = {m.name for m in vigil.config.models} if configured is None else configured
    with vigil.store.tx() as s:
        found = s.execute(select(IncidentRow.id, IncidentRow.model)
                          .where(IncidentRow.status == IncidentStatus.OPEN).order_by(IncidentRow.id)).all()
    sweep = RemovedSweep()
    for incident_id, model in found:
        if model in names:
            continue
        try:
            done = audit_log.retry_audited(partial(_resolve, vigil, incident_id, me), "resolve an incident")
        except Exception:  # the next reload, start-up or lease tick tries again
            log.exception("could not resolve the incident of a removed model", extra={"model": model})
            done = None
        if done is None:
            sweep.deferred.append(model)
        elif done:
            sweep.resolved.append(incident_id)
    return sweep


def sweep_removed(vigil: Vigil, me: str | None) -> bool:
    """The daemon's call (start-up, an applied reload, and a lease tick while one is left):
    whether an incident is left to try again. Never raises: monitoring goes on."""
    try:
        return bool(resolve_removed(vigil, me=me).deferred)
    except Exception:
        log.exception("resolving the incidents of removed models failed")
        return True


def _resolve(vigil: Vigil, incident_id: int, me: str | None) -> bool | None:
    """True: resolved now; False: already resolved (by another replica); None: left to the
    replica that still runs the model."""
    now = vigil.clock.now()
    with vigil.store.tx() as s:
        row = locked_row(s, IncidentRow, incident_id)  # a second replica waits here, then sees it resolved
        if row is None or row.status != IncidentStatus.OPEN:
            return False
        lease = leases.lease_state(s, row.model, lock=True)
        if lease is not None and lease.valid and lease.owner is not None and lease.owner != me:
            log.info("incident of a removed model left open: another replica still runs the model",
                     extra={"model": row.model, "incident": row.id, "replica": lease.owner})
            return None
        told = last_told(row.notified_digest, row.severity)
        row.status, row.resolved_at = IncidentStatus.RESOLVED, max(now, row.opened_at)
        row.updated_at = row.resolved_at
        row.reasons = [REASON] + [r for r in (row.reasons or []) if r != REASON]  # the reply's reason
        vigil.grouper.member_left(s, row, now)  # its group updates, or closes with it
        channels = vigil.store.outbox.told_channels(s, row.id)
        if row.last_notified_at is not None and channels:
            # held: a resolve never opens a page; shown: what people were told, not a held escalation
            vigil.outbox.incident(s, row, channels, now, held=True, shown=str(told))
            vigil.outbox.reply(s, row, channels, "resolved", str(told), now)
        else:  # its message is the group's, or nobody was told: only a receiver that has it
            vigil.outbox.receivers_only(s, row, now)
        state = s.get(ModelStateRow, row.model)
        if state is not None:
            state.quiet_cycles = 0  # should the model come back, it starts afresh
        vigil.store.audit_in(s, "vigil", "incident.resolve", f"incident:{row.id}",
                             {"model": row.model, "severity": row.severity, "reason": REASON}, now=now)
        log.info("incident resolved: %s", REASON, extra={"model": row.model, "incident": row.id})
        return True

