"""Who hears of a rollback's outcome (monitor/cycle/rollback_intents.py), written in the
outcome's own transaction, so a crash cannot tell it twice or not at all: the notifiers that
take rollbacks, the incident's messages where people were told of it, and when nobody was
told of an incident a note of its own in the model's owner channel."""
from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from alerts.lifecycle import last_told
from alerts.policy import Severity
from alerts.rollback import ActionStatus
from monitor.config import ModelConfig
from monitor.cycle.messages import OutboxWriter
from monitor.cycle.plan import routes_of
from monitor.store.repository import IncidentRow

NOTED = (ActionStatus.DONE, ActionStatus.FAILED)  # a dry run changes nothing: no note of its own
RETRYING = "retrying"  # a note's status only: the action itself stays pending


class RollbackTeller:
    def __init__(self, outbox: OutboxWriter) -> None:
        self.outbox = outbox

    def announce(self, s: Session, m: ModelConfig, incident_id: int | None, payload: dict[str, Any], key: str,
                 now: float) -> None:
        """A move, a dry run or a failed attempt: a message to the notifiers that take rollbacks
        (its `status` says which; a rollback recorded failed that landed after all is told
        again under the same key, so Grafana patches its annotation to done), and to people."""
        self.outbox.rollback(s, m.name, payload, now, key=key)
        self.tell(s, m, incident_id, payload, key, now)

    def tell(self, s: Session, m: ModelConfig, incident_id: int | None, payload: dict[str, Any], key: str,
             now: float) -> None:
        """The incident's messages show the outcome. A move, or a failed attempt at one (an SRE
        must know Vigil tried, the more so half-way), of an incident nobody was told of (or of
        none) is a note of its own in the owner channel: no page, no mention."""
        if not self.update_incident(s, m, incident_id, now) and payload["status"] in NOTED:
            self.outbox.rollback_note(s, m.name, routes_of(m).channels(Severity.WARNING), payload, now, key=key)

    def retrying(self, s: Session, m: ModelConfig, incident_id: int | None, payload: dict[str, Any], key: str,
                 now: float) -> None:
        """A rollback's first failed attempt (it retries for up to `max_attempts` cycles, maybe
        half moved meanwhile): the incident's messages show it; of an incident nobody was told
        of (or of none), a note of its own saying it retries, as its outcome's will. Only people:
        the notifiers that take rollbacks hear of its outcome."""
        if not self.update_incident(s, m, incident_id, now):
            self.outbox.rollback_note(s, m.name, routes_of(m).channels(Severity.WARNING),
                                      {**payload, "status": RETRYING}, now, key=key)

    def update_incident(self, s: Session, m: ModelConfig, incident_id: int | None, now: float) -> bool:
        """The incident's messages show the rollback, as an acknowledgement does: where people
        were told of it (the severity last told), and only receivers that have it; resolved
        since (a rollback that retried until after), its resolved message shows it. Only an
        incident muted since it opened has no message to update (False), and a rollback is
        never its page."""
        row = s.get(IncidentRow, incident_id) if incident_id is not None else None
        if row is None or row.last_notified_at is None:
            return False
        told = last_told(row.notified_digest, row.severity)
        self.outbox.incident(s, row, self.outbox.edit_channels(s, row, routes_of(m).channels(told)), now, held=True,
                             shown=told)
        return True
