"""The notification outbox in the store: rows written with the incident change that caused
them, then claimed, sent and marked one at a time by any number of senders.

A row moves through these states (`OutboxStatus`, stored as its plain string):

    pending  --claim-->  sending  --record-->  delivered | failed
                                  --record-->  suppressed  (a silence made after it was queued mutes it)
                                  --record-->  pending  (RETRY: due again after its back-off)
                                  --record-->  sending  (RETRY that may have reached the backend)
    sending past its deadline  --claim-->  sending, "uncertain": looked for before it is sent again

- A claim is one short transaction: a conditional UPDATE (status, attempts and due time
  still as read) that sets `sending`, bumps `attempts` and puts the claim's deadline in
  `next_attempt_at`. On PostgreSQL the row is first locked with `FOR UPDATE SKIP LOCKED`,
  so a replica never waits for another's claim; SQLite serialises writers, and the
  UPDATE's rowcount says who won.
- The bumped `attempts` is the claim's fencing token: `record` only changes a row that
  is still `sending` with that value, so a sender whose claim lapsed and was taken over
  cannot overwrite the new owner's outcome.
- A `sending` row past its deadline lost its sender mid-call: the message may or may
  not be out. Claimed again, it is flagged `uncertain` and the sender asks the notifier
  whether the backend has it before sending (alerts/outbox.py, `FindsDelivered`).
- Claims are judged by one clock for all senders: a live daemon passes the database's
  time as `claim_now` (a claim's deadline is written, and its lapse judged, by it), so a
  replica whose wall clock runs ahead cannot take over a row another replica is still
  sending. Due times of pending rows stay on the caller's clock (a retry's back-off).
  Replays and tests pass no `claim_now`: their own clock judges both.
- Order per (notifier, key): only the oldest row of a key that is `pending` or
  `sending` can be claimed, so a later update never overtakes an earlier one waiting
  for a retry, and nothing else of a key goes out while one of its rows is being sent.
  One exception, `follows`: a receiver's rollback note or change event queued under its
  incident's key waits for every row of the key before it (the page it tells of), but
  nothing waits for it: it only informs, and one retried for hours (a 429 on PagerDuty's
  change endpoint) held back the escalation and the resolve that page people. Its delivery
  leaves the key's ref alone: sent beside a later page, it carries the ref it was claimed
  with, older than the one that page leaves.
"""
from __future__ import annotations

from collections.abc import Callable, Collection
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import ColumnElement, CursorResult, false, func, or_, select, update
from sqlalchemy.orm import Session

from alerts.outbox import DeliveryResult, DeliveryStatus, MessageKind, OutboxMessage, OutboxStatus
from alerts.receivers.http import MAX_RETRY_AFTER_S
from detectors.records import json_safe
from monitor.redact import redact, redact_obj
from monitor.store.leases import db_now
from monitor.store.tables import MessageRefRow, OutboxRow

# How long a claim holds. It must outlast the slowest notifier call (Slack: its timeout
# times the rate-limit retries, plus their Retry-After sleeps): a claim that lapses
# mid-call lets another sender take the row over while the first is still sending.
CLAIM_S = 300.0
_OPEN = (OutboxStatus.PENDING, OutboxStatus.SENDING)
# Whether a row `follows`: a receiver's rollback note or change event under its incident's key
# (monitor/cycle/receivers.py), sent after the rows of the key before it, with the ref they
# left, and holding back none of the rows after it. Said once, in SQL, for every read that
# tells notes apart (`due`, `claim` for `record`, `refs`, `has_open`). substr, not LIKE: SQLite's
# LIKE ignores case, and only "incident:" in lower case is an incident's key.
_FOLLOWS = (OutboxRow.kind == MessageKind.ROLLBACK) & (func.substr(OutboxRow.key, 1, 9) == "incident:")


@dataclass(frozen=True)
class Head:
    """The oldest open row of one (notifier, key), as read: what a claim expects to find."""

    id: int
    status: OutboxStatus
    attempts: int
    notifier: str = ""
    follows: bool = False  # informational, under its incident's key: nothing of the key waits for it


@dataclass(frozen=True)
class Claim:
    """One row held by one sender until `deadline`."""

    message: OutboxMessage  # `attempts` counts the attempts before this one
    token: int  # the row's `attempts` after the claim: `record` needs it unchanged
    uncertain: bool  # an earlier sender's claim lapsed mid-call: its message may be out
    deadline: float
    follows: bool  # a note (`_FOLLOWS`): its delivery leaves the key's ref alone


@dataclass(frozen=True)
class Backlog:
    """What one notifier has not delivered: rows still open (pending or sending), rows
    refused for good (failed, kept until retention purges them) and rows a silence made
    after they were queued held back (suppressed, each naming it in `last_error`)."""

    notifier: str
    open: int
    failed: int
    oldest_open_at: float | None  # created_at of its oldest open row
    suppressed: int = 0


class Outbox:
    """The outbox table's reads and writes; `Store.outbox` is the one instance."""

    def __init__(self, tx: Callable[[], AbstractContextManager[Session]], dialect: str) -> None:
        self._tx = tx
        self._skip_locked = dialect == "postgresql"

    def enqueue(self, s: Session, notifier: str, kind: MessageKind, key: str, payload: dict[str, Any],
                now: float) -> OutboxRow:
        """Add a row in the caller's transaction (the incident change that causes it)."""
        # Every message passes here on its way to Slack, the sink or Grafana: a finding
        # quoting a URL with its password is redacted before it is even stored.
        row = OutboxRow(notifier=notifier, kind=str(kind), key=key, payload=redact_obj(json_safe(payload)),
                        status=OutboxStatus.PENDING, attempts=0, created_at=now, next_attempt_at=now)
        s.add(row)
        s.flush()
        return row

    def database_now(self) -> float:
        """The database's clock, in epoch seconds: what live senders judge claims by."""
        with self._tx() as s:
            return db_now(s)

    def due(self, now: float, limit: int = 100, skip: Collection[str] = (),
            claim_now: float | None = None, keys: Collection[str] | None = None) -> list[Head]:
        """The rows that may be claimed at `now`, oldest first, at most one per (notifier, key)
        and one more that `follows` it, none of the notifiers in `skip` (they do not use up
        the limit). A `sending` row's claim lapses by `claim_now` (default `now`). `keys`: only
        rows whose key is one of them or starts with one and a colon (`incident:7` takes each
        channel's message).

        The scan reads only ids, keys and states of the open rows, so a long outage's
        backlog cannot hide newer due messages.
        """
        with self._tx() as s:
            rows = s.execute(
                select(OutboxRow.id, OutboxRow.notifier, OutboxRow.key, _FOLLOWS, OutboxRow.status,
                       OutboxRow.attempts, OutboxRow.next_attempt_at)
                .where(OutboxRow.status.in_(_OPEN), *_keyed(keys)).order_by(OutboxRow.id)
            ).all()
        lapse_now = now if claim_now is None else claim_now
        seen: set[tuple[str, str]] = set()  # keys with an open row that the rows after it wait for
        noted: set[tuple[str, str]] = set()  # keys with an open row that only the next `follows` waits for
        heads: list[Head] = []
        for id_, notifier, key, note, status, attempts, next_at in rows:
            aside = bool(note)
            if (notifier, key) in seen or (aside and (notifier, key) in noted) or notifier in skip:
                continue  # a later row of a key waits for the head, whatever the head's state
            (noted if aside else seen).add((notifier, key))
            if next_at <= (lapse_now if status == OutboxStatus.SENDING else now):  # due, or its claim lapsed
                heads.append(Head(id_, OutboxStatus(status), attempts, notifier, follows=aside))
                if len(heads) >= limit:
                    break
        return heads

    def claim(self, head: Head, now: float, claim_s: float = CLAIM_S,
              claim_now: float | None = None) -> Claim | None:
        """Take the row for one sender until `claim_now` (default `now`) + `claim_s`; None when
        another sender got there first."""
        lapse_now = now if claim_now is None else claim_now
        due_by = lapse_now if head.status == OutboxStatus.SENDING else now
        with self._tx() as s:
            if self._skip_locked and s.scalar(
                    select(OutboxRow.id).where(OutboxRow.id == head.id).with_for_update(skip_locked=True)) is None:
                return None  # another replica holds it right now
            won = _rowcount(s.execute(
                update(OutboxRow)
                .where(OutboxRow.id == head.id, OutboxRow.status == head.status,
                       OutboxRow.attempts == head.attempts, OutboxRow.next_attempt_at <= due_by)
                .values(status=OutboxStatus.SENDING, attempts=head.attempts + 1, next_attempt_at=lapse_now + claim_s)
                .execution_options(synchronize_session=False)))
            if won != 1:
                return None
            row, note = s.execute(select(OutboxRow, _FOLLOWS).where(OutboxRow.id == head.id)
                                  .execution_options(populate_existing=True)).one()
            ref = s.get(MessageRefRow, (row.notifier, row.key))
            message = OutboxMessage(id=row.id, notifier=row.notifier, kind=MessageKind(row.kind), key=row.key,
                                    payload=row.payload, attempts=head.attempts, ref=ref.ref if ref else None,
                                    created_at=row.created_at)
        return Claim(message, token=head.attempts + 1, uncertain=head.status == OutboxStatus.SENDING,
                     deadline=lapse_now + claim_s, follows=bool(note))

    def claim_due(self, now: float, limit: int = 100, claim_s: float = CLAIM_S) -> list[Claim]:
        """`due` and `claim` in one call: every due head this caller won."""
        return [c for c in (self.claim(h, now, claim_s) for h in self.due(now, limit)) if c is not None]

    def record(self, claim: Claim, result: DeliveryResult, now: float, backoff: float,
               claim_now: float | None = None) -> bool:
        """Store the outcome of a claimed attempt; False when the claim was lost meanwhile
        (it lapsed and another sender took the row: that sender's outcome stands)."""
        with self._tx() as s:
            won = _rowcount(s.execute(
                update(OutboxRow)
                .where(OutboxRow.id == claim.message.id, OutboxRow.status == OutboxStatus.SENDING,
                       OutboxRow.attempts == claim.token)
                .values(**_outcome(result, now, backoff, now if claim_now is None else claim_now))
                .execution_options(synchronize_session=False)))
            if won != 1:
                return False
            msg = claim.message
            if result.status == DeliveryStatus.DELIVERED and result.ref and not claim.follows:
                ref = s.get(MessageRefRow, (msg.notifier, msg.key))
                if ref is None:
                    s.add(MessageRefRow(notifier=msg.notifier, key=msg.key, ref=result.ref))
                else:
                    ref.ref = result.ref
        return True

    def refs(self, notifier: str) -> dict[str, dict[str, Any]]:
        """The last delivery's ref of each key `notifier` has, except keys with a row still
        open (a change waiting to go out; a note, `follows`, changes no alert): what a receiver
        re-sends to keep alerts alive."""
        with self._tx() as s:
            waiting = set(s.scalars(select(OutboxRow.key).where(OutboxRow.notifier == notifier,
                                                                OutboxRow.status.in_(_OPEN), ~_FOLLOWS)))
            rows = s.scalars(select(MessageRefRow).where(MessageRefRow.notifier == notifier)).all()
            return {r.key: r.ref for r in rows if r.key not in waiting and isinstance(r.ref, dict)}

    def has_key(self, s: Session, notifier: str, key: str) -> bool:
        """Whether `notifier` has `key` (in the caller's transaction): a delivery of it landed
        (its ref, by primary key) or a row of it is still open (through the pending index),
        so the check never scans the outbox's history."""
        if s.get(MessageRefRow, (notifier, key)) is not None:
            return True
        return self.has_open(s, notifier, key)

    def has_open(self, s: Session, notifier: str, key: str) -> bool:
        """Whether a change of `key` for `notifier` is still to be delivered (the pending index):
        a note (`follows`) changes no alert, and one retried for hours read as a change on its
        way re-sent a held incident's identical trigger every cycle."""
        q = select(OutboxRow.id).where(OutboxRow.status.in_(_OPEN), OutboxRow.notifier == notifier,
                                       OutboxRow.key == key, ~_FOLLOWS)
        return s.scalar(q.limit(1)) is not None  # one row, not a receiver outage's whole backlog

    def told_channels(self, s: Session, incident_id: int, kind: MessageKind = MessageKind.INCIDENT) -> list[str]:
        """The channels that have an incident's message, delivered or on its way (in the
        caller's transaction): where it was sent, when its routes are no longer known. With
        `kind` GROUP, `incident_id` is a shared cause's group id (keys `group:<id>:<channel>`)."""
        prefix = f"{'group' if kind == MessageKind.GROUP else 'incident'}:{incident_id}:"
        # The rows on their way first, then the refs: a delivery marks its row delivered and
        # writes its ref in one commit, so one landing between the two reads is in the second
        # (read the other way round, on PostgreSQL's read committed, it was in neither).
        sending = list(s.scalars(select(OutboxRow.key).where(
            OutboxRow.key.startswith(prefix, autoescape=True), OutboxRow.kind == kind,
            OutboxRow.status.in_(_OPEN))))
        delivered = s.scalars(select(MessageRefRow.key).where(MessageRefRow.key.startswith(prefix, autoescape=True)))
        return sorted({k[len(prefix):] for k in [*delivered, *sending]})

    def counts(self) -> dict[str, int]:
        with self._tx() as s:
            rows = s.execute(select(OutboxRow.status, func.count()).group_by(OutboxRow.status)).all()
        return {str(status): n for status, n in rows}

    def notifiers(self) -> list[str]:
        """Every notifier the outbox holds a message of, in any state, by name."""
        with self._tx() as s:
            return sorted(s.scalars(select(OutboxRow.notifier).distinct()))

    def backlog(self) -> list[Backlog]:
        """Per notifier with anything undelivered, by name."""
        with self._tx() as s:
            rows = s.execute(select(OutboxRow.notifier, OutboxRow.status, func.count(), func.min(OutboxRow.created_at))
                             .where(OutboxRow.status.in_((*_OPEN, OutboxStatus.FAILED, OutboxStatus.SUPPRESSED)))
                             .group_by(OutboxRow.notifier, OutboxRow.status)).all()
        seen: dict[str, Backlog] = {}
        for notifier, status, n, oldest in rows:
            b = seen.get(notifier, Backlog(notifier, 0, 0, None))
            if status == OutboxStatus.FAILED:
                seen[notifier] = replace(b, failed=b.failed + n)
            elif status == OutboxStatus.SUPPRESSED:
                seen[notifier] = replace(b, suppressed=b.suppressed + n)
            else:
                first = oldest if b.oldest_open_at is None else min(oldest, b.oldest_open_at)
                seen[notifier] = replace(b, open=b.open + n, oldest_open_at=first)
        return [seen[n] for n in sorted(seen)]

    def abandon(self, s: Session, notifier: str, reason: str, now: float) -> int:
        """Mark every open row of `notifier` failed with `reason`, in the caller's transaction
        (with the audit entry that records it); returns how many. A sender in the middle of
        one of them loses its claim: its outcome is not recorded."""
        return _rowcount(s.execute(
            update(OutboxRow).where(OutboxRow.notifier == notifier, OutboxRow.status.in_(_OPEN))
            .values(status=OutboxStatus.FAILED, last_error=reason, next_attempt_at=now)
            .execution_options(synchronize_session=False)))

    def note_waiting(self, notifier: str, why: str) -> int:
        """Say in `last_error` why the open rows of `notifier` wait, without claiming them: a
        sender that cannot send them (monitor/cycle/deliver.py) counts no attempt and puts
        no back-off on the replica that can."""
        with self._tx() as s:
            return _rowcount(s.execute(
                update(OutboxRow).where(OutboxRow.notifier == notifier, OutboxRow.status == OutboxStatus.PENDING,
                                        or_(OutboxRow.last_error.is_(None), OutboxRow.last_error != why))
                .values(last_error=why).execution_options(synchronize_session=False)))

    def newest_notifier(self, names: Collection[str]) -> str | None:
        """Which of `names` the newest outbox row was written for; with none left (delivered
        rows are purged after `retention.delivered_outbox`), the first of `names` whose
        messages people still have (their refs). None: none of them."""
        with self._tx() as s:
            q = select(OutboxRow.notifier).where(OutboxRow.notifier.in_(list(names)))
            newest = s.scalars(q.order_by(OutboxRow.id.desc()).limit(1)).first()
            if newest is not None:
                return newest
            kept = set(s.scalars(select(MessageRefRow.notifier).where(MessageRefRow.notifier.in_(list(names)))
                                 .group_by(MessageRefRow.notifier)))
            return next((n for n in names if n in kept), None)

    def oldest_open(self) -> float | None:
        """`created_at` of the oldest message not yet delivered nor failed (None: none)."""
        with self._tx() as s:
            return s.scalar(select(func.min(OutboxRow.created_at)).where(OutboxRow.status.in_(_OPEN)))

    def suppressed(self, limit: int = 20) -> list[OutboxRow]:
        """The newest rows a silence held back at send time, newest first, each naming it in
        `last_error`: what `vigil outbox list --suppressed` shows."""
        with self._tx() as s:
            q = select(OutboxRow).where(OutboxRow.status == OutboxStatus.SUPPRESSED)
            return list(s.scalars(q.order_by(OutboxRow.id.desc()).limit(limit)))

    def for_prefix(self, prefix: str) -> list[OutboxRow]:
        """Outbox rows whose key is `prefix` or starts with `prefix:` (one incident, all channels)."""
        with self._tx() as s:
            q = select(OutboxRow).where((OutboxRow.key == prefix) | OutboxRow.key.startswith(prefix + ":"))
            return list(s.scalars(q.order_by(OutboxRow.id)))


def _keyed(keys: Collection[str] | None) -> list[ColumnElement[bool]]:
    """`due`'s filter on keys: none without `keys`."""
    if keys is None:
        return []
    return [or_(false(), *[(OutboxRow.key == k) | OutboxRow.key.startswith(k + ":", autoescape=True) for k in keys])]


def _outcome(result: DeliveryResult, now: float, backoff: float, claim_now: float) -> dict[str, Any]:
    """The row's new columns for a delivery result. A row left `sending` waits by the claim
    clock (`claim_now`), a `pending` one by the caller's."""
    if result.status == DeliveryStatus.DELIVERED:
        return {"status": OutboxStatus.DELIVERED, "delivered_at": now, "last_error": None}
    # An error may quote the receiver's URL, password and all: stored redacted, like the payload.
    error = redact(result.error) if result.error else result.error
    if result.status == DeliveryStatus.FAILED:
        return {"status": OutboxStatus.FAILED, "last_error": error}
    if result.status == DeliveryStatus.SUPPRESSED:  # settled when muted: retention purges it from then
        return {"status": OutboxStatus.SUPPRESSED, "last_error": error, "next_attempt_at": now}
    # A notifier's Retry-After, capped here for all of them (a proxy's day-long one held a page a day).
    wait = min(result.retry_after, MAX_RETRY_AFTER_S) if result.retry_after else backoff
    # An uncertain retry stays `sending`: when its deadline passes it is claimed as
    # uncertain again, so it is looked for before it is ever sent again.
    if result.uncertain:
        return {"status": OutboxStatus.SENDING, "next_attempt_at": claim_now + wait, "last_error": error}
    return {"status": OutboxStatus.PENDING, "next_attempt_at": now + wait, "last_error": error}


def _rowcount(result: Any) -> int:
    assert isinstance(result, CursorResult)
    return int(result.rowcount)
