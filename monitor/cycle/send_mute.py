"""Silences again at send time: Alertmanager mutes at its notify stage, so a message that a
cycle queued before a silence was made is held back by it, not sent after its 2xx answer.

What mutes: an active silence that the incident's labels, as they are now, match, or the
incident's own silence (POST /v1/incidents/{id}/silence), which lets an escalation through
as it does when the cycle plans. The row is recorded `suppressed` with what muted it named;
the notifier is never called.

Held back, in a chat channel: an incident's first page (its message, while no copy of it has
been delivered there) and its reminders (a repeat, an escalation in the thread), for an
incident still open. For a receiver (PagerDuty, Opsgenie, webhook, Alertmanager): its page of
the incident (the first record it is sent, while it has none) and an escalation above the
severity it has, whether the incident is still open or resolved since it was queued; and
a resolve or an edit of an incident whose page to it was held back (it would close or
open an alert nobody was paged with).
A shared cause's page likewise (keys `group:<id>...`: its first message in a channel, a
reminder in its thread, a receiver's first record or escalation), while it is open and
muted as the cycle mutes it (silenced as itself, or every open member muted).

Never held back: a resolve of what people were told (an edit and a reply for people who
were told it opened: as the cycle decides, silence or not, alerts/lifecycle.py); an edit
of a message or an alert people have (an update at the severity they have, an ack); Grafana
annotations (a record, not a page; the JSON-lines sink stands in for a chat tool and is
held as one); rollback notes and change events.

A first page held back leaves the incident as if muted since it opened (no digest told, no
reminder clock), when no channel has its message: the cycle after the silence ends pages
what is still wrong, and a resolve meanwhile tells no one of what nobody saw. An escalation
held back leaves it as told at the severity before: the cycle after the silence ends tells
the escalation (the reply, the on-call's page, the receivers' page), as when the plan
itself was muted.
"""
from __future__ import annotations

from collections.abc import Callable, Collection

from sqlalchemy import select
from sqlalchemy.orm import Session

from alerts.lifecycle import IncidentStatus, split_told, told_digest
from alerts.outbox import MessageKind, OutboxMessage, OutboxStatus
from alerts.policy import Severity
from alerts.receivers.mapping import HELD, iso
from alerts.receivers.record import state_of
from alerts.silences import muting
from monitor.config import VigilConfig
from monitor.cycle.suppress import group_labels, group_muted, group_silenced, row_labels
from monitor.store import groups, silences
from monitor.store.groups import AlertGroupRow
from monitor.store.repository import IncidentRow, OutboxRow, Store
from monitor.store.tables import MessageRefRow, locked_row

REMINDERS = ("repeated", "escalated")  # a reply's `change` that pings people; "resolved" is not held


def chat_incident(key: str) -> int | None:
    """The incident of a chat channel's key (`incident:<id>:<channel>`); None for any other key."""
    kind, _, rest = key.partition(":")
    number, sep, channel = rest.partition(":")
    return int(number) if kind == "incident" and sep and channel and number.isdigit() else None


class SendTimeSilences:
    """Asked by the sender (monitor/cycle/deliver.py) just before it sends a claimed message.
    `receivers`: the names of the notifiers that are receivers (alerts/receivers/base.py)."""

    def __init__(self, store: Store, config: Callable[[], VigilConfig], receivers: Collection[str] = ()) -> None:
        self.store, self.config = store, config
        self.receivers = frozenset(receivers)

    def holds(self, msg: OutboxMessage, now: float) -> str | None:
        """Why `msg` is not to be sent (the silence that mutes it), or None to send it."""
        if group_of(msg.key) is not None:
            return self._group(msg, now)
        if msg.notifier in self.receivers:
            return self._receiver(msg, now)
        incident_id = chat_incident(msg.key)
        first_page = msg.kind == MessageKind.INCIDENT and msg.ref is None
        change = msg.payload.get("change")
        reminder = msg.kind == MessageKind.REPLY and change in REMINDERS
        if incident_id is None or not (first_page or reminder):
            return None
        with self.store.tx() as s:
            row = s.get(IncidentRow, incident_id)
            if row is None or row.status != IncidentStatus.OPEN:
                return None
            found = self._muted(s, row, now, escalation=change == "escalated" and not first_page)
            if found is None:
                return None
            if first_page:
                _untold(s, incident_id)
            elif change == "escalated":
                _told_at(s, incident_id, str(msg.payload.get("previous_severity") or Severity.WARNING))
        what = "first page" if first_page else f"{change} reminder"
        return f"suppressed by {found}: the {what} was queued before it and not sent"

    def _muted(self, s: Session, row: IncidentRow, now: float, *, escalation: bool) -> str | None:
        """What mutes the incident now: a silence its labels (as they are now) match, or its
        own silence (POST /v1/incidents/{id}/silence), which lets an escalation through."""
        found = muting(silences.live(s, now), row_labels(self.config(), row), now)
        if found:
            return found[0].describe()
        if row.silenced_until is not None and now < row.silenced_until and not escalation:
            return f"the incident's own silence (silenced until {iso(row.silenced_until)})"
        return None

    def _receiver(self, msg: OutboxMessage, now: float) -> str | None:
        """A receiver's page (an incident's first record, or its escalation) of an incident a
        silence mutes now; or a change of an alert it never got, its page held back."""
        incident_id = receiver_incident(msg.key)
        if incident_id is None or msg.kind != MessageKind.INCIDENT:
            return None  # a rollback note, a change event: records, not pages
        record, ref = msg.payload, msg.ref
        quiet = bool(record.get(HELD)) or state_of(record) == "resolved"
        if ref is None and quiet:
            return self._after_held(msg)
        escalation = ref is not None and _rank(record.get("severity")) > _rank(ref.get("severity"))
        if quiet or not (ref is None or escalation):
            return None  # an update of an alert it has, an ack, a resolve
        with self.store.tx() as s:
            row = s.get(IncidentRow, incident_id)
            found = None if row is None else self._muted(s, row, now, escalation=escalation)
            if row is None or found is None:
                return None
            if row.status == IncidentStatus.OPEN and ref is None:
                _untold(s, incident_id)
            elif row.status == IncidentStatus.OPEN:
                _told_at(s, incident_id, str(ref.get("severity")) if ref else str(Severity.WARNING))
        what = "escalation" if escalation else "page"
        return f"suppressed by {found}: the {what} was queued before it and not sent"

    def _group(self, msg: OutboxMessage, now: float) -> str | None:
        """A shared cause's page (its first message in a channel, a reminder in its thread, a
        receiver's first record or escalation) while the cause is muted now: silenced as
        itself, or every open member muted (monitor/cycle/suppress.py, as the cycle mutes it)."""
        group_id = group_of(msg.key)
        page = _group_page(msg, msg.notifier in self.receivers)
        if group_id is None or page is None:
            return self._after_held(msg) if msg.ref is None else None  # nothing there to change or close
        first, previous = page
        with self.store.tx() as s:
            group = s.get(AlertGroupRow, group_id)
            if group is None or group.open_key is None:
                return None
            found = _group_muting(s, self.config(), group, now)
            if found is None:
                return None
            if first:
                _group_untold(s, group_id)
            elif previous is not None and _rank(previous) < _rank(group.notified_severity):
                locked = locked_row(s, AlertGroupRow, group_id)
                if locked is not None:  # told at the severity before; CHANGED once it is no longer muted
                    locked.notified_severity, locked.notified_digest = previous, None
        what = "first page" if first else ("escalation" if previous else f"{msg.payload.get('change')} reminder")
        return f"suppressed by {found}: the shared cause's {what} was queued before it and not sent"

    def _after_held(self, msg: OutboxMessage) -> str | None:
        """Held when the receiver has nothing of the key because a silence held its page back:
        a resolve or an edit would close or open an alert nobody was paged with."""
        with self.store.tx() as s:
            why = s.scalar(select(OutboxRow.last_error).where(
                OutboxRow.notifier == msg.notifier, OutboxRow.key == msg.key, OutboxRow.id < msg.id,
                OutboxRow.status == OutboxStatus.SUPPRESSED).order_by(OutboxRow.id.desc()).limit(1))
        if why is None:
            return None
        return f"not sent: the receiver never got the page it changes ({why})"


def receiver_incident(key: str) -> int | None:
    """The incident of a receiver's key (`incident:<id>`); None for any other key."""
    kind, _, number = key.partition(":")
    return int(number) if kind == "incident" and number.isdigit() else None


def group_of(key: str) -> int | None:
    """The shared cause of a key (`group:<id>` for receivers, `group:<id>:<channel>` in chat)."""
    kind, _, rest = key.partition(":")
    number = rest.partition(":")[0]
    return int(number) if kind == "group" and number.isdigit() else None


def _group_page(msg: OutboxMessage, receiver: bool) -> tuple[bool, str | None] | None:
    """(first page, the severity told before an escalation) when `msg` pages for a shared
    cause; None for an edit, a resolve, a note."""
    if receiver:
        record, ref = msg.payload, msg.ref
        if msg.kind != MessageKind.INCIDENT or state_of(record) == "resolved" or record.get(HELD):
            return None
        if ref is None:
            return True, None
        before = str(ref.get("severity"))
        return (False, before) if _rank(record.get("severity")) > _rank(before) else None
    if msg.kind == MessageKind.GROUP and msg.ref is None and msg.payload.get("status") != "resolved":
        return True, None
    change = msg.payload.get("change")
    if msg.kind != MessageKind.REPLY or change not in REMINDERS:
        return None
    return False, str(msg.payload.get("previous_severity")) if change == "escalated" else None


def _group_muting(s: Session, config: VigilConfig, group: AlertGroupRow, now: float) -> str | None:
    """What mutes a shared cause now, in words; None when nothing does."""
    members = groups.members(s, group.id)
    live = silences.live(s, now)
    if group_muted(s, config, group, members, now, live):
        return "the shared cause's mute (its maintenance window, or every open model muted)"
    if not group_silenced(s, config, group, members, now, live):
        return None
    labels = group_labels(s, config, group, members)
    first = next(m.model for m in members if m.open)
    found = muting(live, {**labels, "model": (first,)}, now)
    return found[0].describe() if found else "a silence of the shared cause"


def _group_untold(s: Session, group_id: int) -> None:
    """The shared cause as if it never paged, unless a channel or a receiver has its page:
    it pages once it is no longer muted."""
    prefix = f"group:{group_id}"
    if s.scalar(select(MessageRefRow.key).where((MessageRefRow.key == prefix) | MessageRefRow.key.startswith(
            prefix + ":", autoescape=True)).limit(1)) is not None:
        return
    group = locked_row(s, AlertGroupRow, group_id)
    if group is not None and group.open_key is not None:
        group.notified_at = group.notified_digest = group.notified_severity = group.told_at = None


def _rank(severity: object) -> int:
    try:
        return Severity(str(severity)).rank
    except ValueError:  # none, or not one of Vigil's
        return 0


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
