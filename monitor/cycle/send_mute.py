"""Silences again at send time: Alertmanager mutes at its notify stage, so a message that a
cycle queued before a silence was made is held back by it, not sent after its 2xx answer.

Held back: an incident's first page in a chat channel (its message, while no copy of it has
been delivered there) and its reminders (a repeat, an escalation in the thread), for an
incident still open whose labels, as they are now, an active silence matches. The row
is recorded `suppressed` with the silence named; the notifier is never called.

Never held back: a resolve (an edit and a reply for people who were told it opened: as the
cycle decides, silence or not, alerts/lifecycle.py); an edit of a message people have; the
JSON-lines sink and Grafana annotations (a record, not a page); receivers (PagerDuty,
Opsgenie, webhook, Alertmanager), which keep their own state of what they were paged with.

A first page held back leaves the incident as if muted since it opened (no digest told, no
reminder clock), when no channel has its message: the cycle after the silence ends pages
what is still wrong, and a resolve meanwhile tells no one of what nobody saw. An escalation
held back leaves it as told at the severity before: the cycle after the silence ends tells
the escalation (the reply, the on-call's page), as when the plan itself was muted.
"""
from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from alerts.lifecycle import IncidentStatus, split_told, told_digest
from alerts.outbox import MessageKind, OutboxMessage
from alerts.policy import Severity
from alerts.silences import muting
from monitor.config import VigilConfig
from monitor.cycle.suppress import row_labels
from monitor.store import silences
from monitor.store.repository import IncidentRow, Store
from monitor.store.tables import MessageRefRow, locked_row

REMINDERS = ("repeated", "escalated")  # a reply's `change` that pings people; "resolved" is not held


def chat_incident(key: str) -> int | None:
    """The incident of a chat channel's key (`incident:<id>:<channel>`); None for any other key."""
    kind, _, rest = key.partition(":")
    number, sep, channel = rest.partition(":")
    return int(number) if kind == "incident" and sep and channel and number.isdigit() else None


class SendTimeSilences:
    """Asked by the sender (monitor/cycle/deliver.py) just before it sends a claimed message."""

    def __init__(self, store: Store, config: Callable[[], VigilConfig]) -> None:
        self.store, self.config = store, config

    def holds(self, msg: OutboxMessage, now: float) -> str | None:
        """Why `msg` is not to be sent (the silence that mutes it), or None to send it."""
        incident_id = chat_incident(msg.key)
        first_page = msg.kind == MessageKind.INCIDENT and msg.ref is None
        reminder = msg.kind == MessageKind.REPLY and msg.payload.get("change") in REMINDERS
        if incident_id is None or not (first_page or reminder):
            return None
        with self.store.tx() as s:
            row = s.get(IncidentRow, incident_id)
            if row is None or row.status != IncidentStatus.OPEN:
                return None
            found = muting(silences.live(s, now), row_labels(self.config(), row), now)
            if not found:
                return None
            if first_page:
                _untold(s, incident_id)
            elif msg.payload.get("change") == "escalated":
                _told_at(s, incident_id, str(msg.payload.get("previous_severity") or Severity.WARNING))
        what = "first page" if first_page else f"{msg.payload.get('change')} reminder"
        return f"suppressed by {found[0].describe()}: the {what} was queued before it and not sent"


def _told_at(s: Session, incident_id: int, previous: str) -> None:
    """An escalation held back is still news: the incident as told at `previous`, so the
    cycle after the silence ends tells it (as one muted when it was planned)."""
    row = locked_row(s, IncidentRow, incident_id)
    if row is None or row.status != IncidentStatus.OPEN or not row.notified_digest:
        return
    digest, told = split_told(row.notified_digest)
    if previous in {x.value for x in Severity} and (told is None or told.rank > Severity(previous).rank):
        row.notified_digest = told_digest(digest or "", previous)


def _untold(s: Session, incident_id: int) -> None:
    """The incident as if muted since it opened, unless a channel has its message."""
    prefix = f"incident:{incident_id}:"
    if s.scalar(select(MessageRefRow.key).where(MessageRefRow.key.startswith(prefix, autoescape=True))
                .limit(1)) is not None:
        return
    row = locked_row(s, IncidentRow, incident_id)
    if row is not None and row.status == IncidentStatus.OPEN:
        row.notified_digest = None
        row.last_notified_at = None
