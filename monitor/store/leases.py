"""Lease tables for several replicas on one database, and the SQL that moves leases.

`replicas` holds one row per running daemon and its last heartbeat. `model_leases` holds
one row per model ever leased: who owns it, until when, and the fencing token of the
current ownership. A lease row is never deleted: a released lease keeps its token, so the
next owner's token is larger than every token handed out before for that model.

Every expiry decision is made with the database's clock (`now_expr`), never the replica's:
a replica whose wall clock is wrong, or which runs on a replay clock, can neither steal a
live lease nor keep an expired one. Times are epoch seconds of that clock.

Each function takes the caller's session and runs inside the caller's transaction.
"""
from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, Float, Integer, String, cast, delete, extract, func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Mapped, Session, mapped_column
from sqlalchemy.sql.elements import ColumnElement

from monitor.store.tables import Base

# A PostgreSQL transaction left idle this long is ended by the server (its session closed).
# A fenced transaction holds its lease row FOR SHARE and a takeover skips locked rows, so a
# replica paused mid-transaction (stopped VM, GC stall) would otherwise keep its models from
# every other replica for as long as it stays paused; it is far longer than any of Vigil's
# transactions waits between two statements.
IDLE_TX_TIMEOUT_S = 120.0

# A statement of Vigil's waits at most this long for a lock (PostgreSQL's `lock_timeout`), then
# fails with 55P03 and its transaction rolls back (the cycle counts as failed and the next one
# does its work again; an outbox row stays where it was). The idle timeout above bounds only
# Vigil's own sessions: a person's `psql` left inside a transaction holding a table, or a
# stuck client of another kind, otherwise stalled every replica's cycles, silently, for as long
# as it held on. Vigil's own waits are short (rows held for one transaction; the takeovers and
# the outbox skip locked rows), so this is far above them. There is no `statement_timeout`:
# a statement that is slow on its own (a retention batch, a large label batch) is working, not
# waiting; `vigil db upgrade` and the schema's advisory lock set their own bounds.
LOCK_TIMEOUT_S = 30.0

# Julian day number of 1970-01-01T00:00Z: SQLite's julianday('now') minus this, in
# seconds, is epoch time with millisecond precision (unixepoch('subsec') needs 3.42).
_JULIAN_EPOCH = 2440587.5
_QUERY_CANCELED = "57014"  # PostgreSQL's statement_timeout
_LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL's lock_timeout


class ReplicaRow(Base):
    __tablename__ = "replicas"
    replica_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    host: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[float] = mapped_column(Float)
    heartbeat_at: Mapped[float] = mapped_column(Float, index=True)


class ModelLeaseRow(Base):
    __tablename__ = "model_leases"
    model: Mapped[str] = mapped_column(String(100), primary_key=True)
    owner: Mapped[str | None] = mapped_column(String(200), index=True)
    token: Mapped[int] = mapped_column(BigInteger, default=0)
    expires_at: Mapped[float] = mapped_column(Float, default=0.0)
    acquired_at: Mapped[float | None] = mapped_column(Float)


@dataclass(frozen=True)
class LeaseState:
    """A lease row as the database sees it now; `valid` is judged by the database's clock."""

    model: str
    owner: str | None
    token: int
    valid: bool


def _dialect(s: Session) -> str:
    return s.get_bind().dialect.name


def now_expr(dialect: str) -> ColumnElement[float]:
    """The database's current time as epoch seconds, re-read at each statement."""
    if dialect == "postgresql":
        # clock_timestamp(), not now(): now() is frozen at the start of the transaction.
        return cast(extract("epoch", func.clock_timestamp()), Float)
    if dialect == "sqlite":
        return cast((func.julianday("now") - _JULIAN_EPOCH) * 86400.0, Float)
    raise ValueError(f"leases support PostgreSQL and SQLite, not {dialect!r}")


def bound_idle_transactions(dbapi_conn: Any, _record: Any) -> None:
    """On each new PostgreSQL connection (an engine "connect" listener): `IDLE_TX_TIMEOUT_S`
    and `LOCK_TIMEOUT_S`."""
    cur = dbapi_conn.cursor()
    cur.execute(f"SET idle_in_transaction_session_timeout = {int(IDLE_TX_TIMEOUT_S * 1000)}")
    cur.execute(f"SET lock_timeout = {max(1, int(LOCK_TIMEOUT_S * 1000))}")
    cur.close()
    dbapi_conn.commit()  # a SET in a transaction that rolls back is undone


def db_now(s: Session) -> float:
    return float(s.execute(select(now_expr(_dialect(s)))).scalar_one())


def _insert(s: Session) -> Any:
    return pg_insert if _dialect(s) == "postgresql" else sqlite_insert


# ---------------------------------------------------------------- replicas
def upsert_replica(s: Session, replica_id: str, host: str, pid: int) -> None:
    """Record a heartbeat; the first one also records when the replica started."""
    now = now_expr(_dialect(s))
    stmt = _insert(s)(ReplicaRow).values(replica_id=replica_id, host=host, pid=pid, started_at=now, heartbeat_at=now)
    s.execute(stmt.on_conflict_do_update(index_elements=[ReplicaRow.replica_id],
                                         set_={"heartbeat_at": now, "host": host, "pid": pid}))


def live_replicas(s: Session, ttl: float) -> list[str]:
    """Replicas whose last heartbeat is younger than `ttl` seconds, sorted."""
    q = select(ReplicaRow.replica_id).where(ReplicaRow.heartbeat_at > now_expr(_dialect(s)) - ttl)
    return sorted(s.scalars(q))


def expire_replicas(s: Session, ttl: float) -> list[str]:
    """Delete replicas silent for longer than `ttl`; returns their ids.

    On PostgreSQL the rows are picked with SKIP LOCKED, so two replicas sweeping at once
    never wait on (or deadlock over) each other's deletes."""
    dead = select(ReplicaRow.replica_id).where(ReplicaRow.heartbeat_at <= now_expr(_dialect(s)) - ttl)
    if _dialect(s) == "postgresql":
        dead = dead.with_for_update(skip_locked=True)
    ids = list(s.scalars(dead))
    if ids:
        s.execute(delete(ReplicaRow).where(ReplicaRow.replica_id.in_(ids)))
    return sorted(ids)


def remove_replica(s: Session, replica_id: str) -> None:
    s.execute(delete(ReplicaRow).where(ReplicaRow.replica_id == replica_id))


# ---------------------------------------------------------------- leases
def renew(s: Session, owner: str, ttl: float, busy_wait_s: float = 0.0) -> dict[str, tuple[int, float]]:
    """Extend every still-valid lease of `owner` by `ttl`; returns model -> (token, seconds
    the lease is valid for from now, judged by the database) of every valid lease.

    An expired lease is not renewed even when nobody took it: the owner must acquire it
    again under a new token, so a token always stands for one unbroken ownership.

    On PostgreSQL a row one of the owner's own cycles holds FOR SHARE (its fence) is not
    waited for in the one UPDATE: waiting for each such row in turn outlasted the other
    leases under load, and the replica lost them to itself. The free rows are renewed at
    once; the busy ones get `busy_wait_s` more, and those still busy keep what they have
    left (the next renewal tries again). A row locked by another replica taking it over
    (this one looked dead to it) is busy too: the fence refuses this replica's writes there."""
    now = now_expr(_dialect(s))
    mine = (ModelLeaseRow.owner == owner, ModelLeaseRow.expires_at > now)
    if _dialect(s) != "postgresql":
        stmt = update(ModelLeaseRow).where(*mine).values(expires_at=now + ttl)
        return {m: (int(t), ttl) for m, t in s.execute(stmt.returning(ModelLeaseRow.model, ModelLeaseRow.token))}
    free = select(ModelLeaseRow.model).where(*mine).with_for_update(key_share=True, skip_locked=True)
    held = _renew_where(s, ttl, ModelLeaseRow.model.in_(free.scalar_subquery()), *mine)
    left = select(ModelLeaseRow.model, ModelLeaseRow.token, ModelLeaseRow.expires_at - now).where(*mine)
    busy = {m: (int(t), float(rest)) for m, t, rest in s.execute(left) if m not in held}
    if busy and busy_wait_s > 0:
        try:
            with s.begin_nested():  # a timed-out wait undoes only this statement (and its SET LOCAL)
                s.execute(text(f"SET LOCAL statement_timeout = {max(1, int(busy_wait_s * 1000))}"))
                held |= _renew_where(s, ttl, ModelLeaseRow.model.in_(list(busy)), *mine)
                s.execute(text("SET LOCAL statement_timeout = 0"))
            return held  # a busy row it did not renew once it could: expired, or taken over meanwhile
        except OperationalError as e:
            if getattr(e.orig, "sqlstate", None) not in (_QUERY_CANCELED, _LOCK_NOT_AVAILABLE):
                raise
    return {**busy, **held}


def _renew_where(s: Session, ttl: float, *where: ColumnElement[bool]) -> dict[str, tuple[int, float]]:
    now = now_expr(_dialect(s))
    stmt = update(ModelLeaseRow).where(*where).values(expires_at=now + ttl)
    return {m: (int(t), ttl) for m, t in s.execute(stmt.returning(ModelLeaseRow.model, ModelLeaseRow.token))}


def release(s: Session, owner: str, models: Collection[str]) -> list[str]:
    """Give up `owner`'s leases on `models` now (the token stays, for the next owner to bump)."""
    if not models:
        return []
    stmt = (update(ModelLeaseRow)
            .where(ModelLeaseRow.owner == owner, ModelLeaseRow.model.in_(list(models)))
            .values(owner=None, expires_at=now_expr(_dialect(s)))
            .returning(ModelLeaseRow.model))
    return sorted(s.scalars(stmt))


def release_all(s: Session, owner: str) -> list[str]:
    """Give up every lease of `owner` (a replica shutting down)."""
    stmt = (update(ModelLeaseRow).where(ModelLeaseRow.owner == owner)
            .values(owner=None, expires_at=now_expr(_dialect(s))).returning(ModelLeaseRow.model))
    return sorted(s.scalars(stmt))


def _ensure_rows(s: Session, models: Collection[str]) -> None:
    """A lease row per model (unowned, token 0) so acquiring is always an UPDATE."""
    have = set(s.scalars(select(ModelLeaseRow.model).where(ModelLeaseRow.model.in_(list(models)))))
    missing = [{"model": m, "owner": None, "token": 0, "expires_at": 0.0} for m in models if m not in have]
    if missing:
        s.execute(_insert(s)(ModelLeaseRow).values(missing).on_conflict_do_nothing(index_elements=["model"]))


def acquire(s: Session, owner: str, models: Collection[str], ttl: float, live_ttl: float) -> dict[str, int]:
    """Take the leases on `models` that are free, expired, or held by a replica that is not
    live (no heartbeat within `live_ttl`); returns model -> new token of those taken.

    Race-free on both databases. On PostgreSQL the candidate rows are locked FOR UPDATE
    SKIP LOCKED (a row another replica is taking, or that a writer holds FOR SHARE under
    its fence, is left for the next round), so what was read stays true until commit and
    one UPDATE takes them all. SQLite has no row locks: each row is taken by its own
    compare-and-set UPDATE on the row as read, which fails if anything changed since."""
    if not models:
        return {}
    _ensure_rows(s, models)
    q = select(ModelLeaseRow).where(ModelLeaseRow.model.in_(list(models))).order_by(ModelLeaseRow.model)
    if _dialect(s) == "postgresql":
        q = q.with_for_update(skip_locked=True)
    rows = [(r.model, r.owner, r.token, r.expires_at) for r in s.scalars(q)]
    # Read after locking: a replica whose acquisition committed before our lock is seen live.
    live = set(live_replicas(s, live_ttl))
    now = db_now(s)
    takeable = [(model, (held_by, token, expires_at)) for model, held_by, token, expires_at in rows
                if held_by is None or held_by == owner or expires_at <= now or held_by not in live]
    if _dialect(s) == "postgresql":  # the rows are locked: one UPDATE takes them all
        return _take_locked(s, owner, [m for m, _ in takeable], ttl)
    taken: dict[str, int] = {}
    for model, seen in takeable:
        new = _compare_and_take(s, owner, model, seen, ttl)
        if new is not None:
            taken[model] = new
    return taken


def _take_locked(s: Session, owner: str, models: list[str], ttl: float) -> dict[str, int]:
    if not models:
        return {}
    now = now_expr(_dialect(s))
    stmt = (update(ModelLeaseRow).where(ModelLeaseRow.model.in_(models))
            .values(owner=owner, token=ModelLeaseRow.token + 1, expires_at=now + ttl, acquired_at=now)
            .returning(ModelLeaseRow.model, ModelLeaseRow.token))
    return {m: int(tok) for m, tok in s.execute(stmt)}


def _compare_and_take(s: Session, owner: str, model: str, seen: tuple[str | None, int, float],
                      ttl: float) -> int | None:
    held_by, token, expires_at = seen
    now = now_expr(_dialect(s))
    same_owner = ModelLeaseRow.owner.is_(None) if held_by is None else ModelLeaseRow.owner == held_by
    stmt = (update(ModelLeaseRow)
            .where(ModelLeaseRow.model == model, ModelLeaseRow.token == token, same_owner,
                   ModelLeaseRow.expires_at == expires_at)
            .values(owner=owner, token=ModelLeaseRow.token + 1, expires_at=now + ttl, acquired_at=now)
            .returning(ModelLeaseRow.token))
    new = s.execute(stmt).scalar_one_or_none()
    return None if new is None else int(new)


def lease_state(s: Session, model: str, *, lock: bool) -> LeaseState | None:
    """The lease on `model`; with `lock` on PostgreSQL the row is held FOR SHARE until the
    transaction ends, so no takeover (an UPDATE of the row) can commit before it does."""
    valid = (ModelLeaseRow.expires_at > now_expr(_dialect(s))).label("valid")
    q = select(ModelLeaseRow.owner, ModelLeaseRow.token, valid).where(ModelLeaseRow.model == model)
    if lock and _dialect(s) == "postgresql":
        q = q.with_for_update(read=True, of=ModelLeaseRow)
    row = s.execute(q).first()
    if row is None:
        return None
    return LeaseState(model, row.owner, int(row.token), bool(row.valid))


def leases(s: Session) -> list[LeaseState]:
    """Every lease row, judged by the database's clock in one statement (one snapshot)."""
    valid = (ModelLeaseRow.expires_at > now_expr(_dialect(s))).label("valid")
    q = select(ModelLeaseRow.model, ModelLeaseRow.owner, ModelLeaseRow.token, valid).order_by(ModelLeaseRow.model)
    return [LeaseState(r.model, r.owner, int(r.token), bool(r.valid)) for r in s.execute(q)]
