"""The audit log's rows: append (keyed or plain), stream for verification, read the head.

An append reads the newest row and writes the next seq; two writers racing for one seq
collide on the primary key (or the unique hash) and the loser's transaction fails, so its
caller retries on a fresh head: the chain stays one line whatever the number of replicas.

With a key, the first append that finds the newest row not keyed with it (an empty log,
a store written before keying, another key) first writes an `audit.keyed` marker, in the
same transaction: where keyed entries begin is itself an entry of the chain, so nothing
about existing rows changes and no column is added.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from alerts.audit import GENESIS, KEYED_MARKER, AuditEntry, ChainKey, entry_hash, keyed_by, keyed_hash, marker_detail
from monitor.store.tables import AuditRow

# Session.info key: the entries a transaction appended, announced once it commits.
APPENDED = "vigil.audit.appended"
STREAM_BATCH = 2000


@dataclass(frozen=True)
class AuditHead:
    """What a checkpoint records: how many rows, and the newest one's seq and hash."""

    count: int
    seq: int
    hash: str


def _last(s: Session) -> AuditEntry | None:
    row = s.scalars(select(AuditRow).order_by(AuditRow.seq.desc()).limit(1)).first()
    return row.to_entry() if row is not None else None


def _add(s: Session, key: ChainKey | None, prev: AuditEntry | None, fields: tuple[float, str, str, str, dict[str, Any]]
         ) -> AuditEntry:
    at, actor, action, target, detail = fields
    seq = prev.seq + 1 if prev else 1
    prev_hash = prev.hash if prev else GENESIS
    h = (keyed_hash(key, prev_hash, seq, at, actor, action, target, detail) if key is not None
         else entry_hash(prev_hash, seq, at, actor, action, target, detail))
    row = AuditRow(seq=seq, at=at, actor=actor, action=action, target=target, detail=detail, prev_hash=prev_hash,
                   hash=h)
    s.add(row)
    s.flush()  # a racing writer's seq shows here (or at commit): the caller retries
    entry = row.to_entry()
    s.info.setdefault(APPENDED, []).append(entry)
    return entry


def append(s: Session, key: ChainKey | None, at: float, actor: str, action: str, target: str,
           detail: dict[str, Any]) -> AuditEntry:
    """Append one entry (after a marker when the chain is not yet keyed with `key`)."""
    last = _last(s)
    if key is not None and (last is None or not keyed_by(key, last)):
        last = _add(s, key, last, (at, "vigil", KEYED_MARKER, "audit", marker_detail(key)))
    return _add(s, key, last, (at, actor, action, target, detail))


def is_keyed(s: Session) -> bool:
    """Whether the chain has been keyed (a marker entry exists): from then on, an entry
    appended without the key reads as tampering to `vigil audit verify`."""
    return s.scalar(select(AuditRow.seq).where(AuditRow.action == KEYED_MARKER).limit(1)) is not None


def stream(s: Session, *, since_seq: int = 0) -> Iterator[AuditEntry]:
    """Every entry in seq order, fetched in batches: 100k rows never sit in memory at once."""
    q = (select(AuditRow.seq, AuditRow.at, AuditRow.actor, AuditRow.action, AuditRow.target, AuditRow.detail,
                AuditRow.prev_hash, AuditRow.hash)
         .where(AuditRow.seq > since_seq).order_by(AuditRow.seq).execution_options(yield_per=STREAM_BATCH))
    for row in s.connection().execute(q):  # Core rows: no ORM bookkeeping per row
        yield AuditEntry(*row)


def head(s: Session) -> AuditHead:
    # count and max in one statement: one snapshot even under PostgreSQL's read committed.
    count, seq = s.execute(select(func.count(), func.max(AuditRow.seq)).select_from(AuditRow)).one()
    if not seq:
        return AuditHead(0, 0, GENESIS)
    h = s.scalar(select(AuditRow.hash).where(AuditRow.seq == seq))
    return AuditHead(int(count), int(seq), str(h))


_T = TypeVar("_T")


def retry_audited(tx: Callable[[], _T], what: str) -> _T:
    """Run `tx` (one transaction that appends to the audit log) again when another writer
    appended the same seq first: the unique key fails one of them, which tries again."""
    last: IntegrityError | None = None
    for _ in range(20):
        try:
            return tx()
        except IntegrityError as e:
            last = e
            time.sleep(0.01)
    raise RuntimeError(f"could not {what} after 20 attempts") from last
