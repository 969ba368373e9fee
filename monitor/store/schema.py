"""The store's schema version: Alembic revisions under monitor/store/migrations/.

Four states a store can be in, and what opens it:

- empty (none of Vigil's tables): created at the head revision by `Store(url)` itself, so
  a first start, `vigil demo` and the tests need no extra step;
- unversioned (the tables `create_all` made before migrations, no `alembic_version`):
  `vigil db upgrade` stamps the baseline, then applies the rest;
- behind (an older revision): the daemon refuses to start and names `vigil db upgrade`;
- at head: runs.

An upgrade is never run implicitly on a store that holds data: several replicas may share
it, and an operator decides when its schema changes (after a backup).
"""
from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

log = logging.getLogger("vigil.store")

BASELINE = "0001_baseline"
# A table every store since 0.1.0 has: its presence without `alembic_version` means "made by create_all".
_MARKER_TABLE = "incidents"
_PG_LOCK_KEY = 0x5669_6769_6C00  # "Vigil\0": one advisory lock for schema changes, across replicas
# An ALTER TABLE waits for every open transaction on its table, and every statement of every
# replica on that table queues behind it: one long transaction of a replica still running
# would stall the whole fleet. On PostgreSQL an attempt waits this long for a lock, then gives
# way (rolled back whole: PostgreSQL's DDL is transactional) and is tried again.
MIGRATION_LOCK_TIMEOUT_S = 5.0
MIGRATION_ATTEMPTS = 12
_LOCK_NOT_AVAILABLE = "55P03"


class SchemaState(StrEnum):
    EMPTY = "empty"
    UNVERSIONED = "unversioned"
    BEHIND = "behind"
    CURRENT = "current"
    UNKNOWN = "unknown"  # a revision this code does not know: a newer Vigil migrated it


@dataclass(frozen=True)
class SchemaStatus:
    state: SchemaState
    current: str | None
    head: str


class StoreBehind(RuntimeError):
    """The store's schema is not the one this Vigil needs; the message says what to run."""


class MigrationLockBusy(StoreBehind):
    """`vigil db upgrade` gave way to the transactions holding a table it alters, every attempt."""


def alembic_config(connection: Connection | None = None) -> Config:
    """No alembic.ini: the scripts ship inside the package (monitor.store:migrations)."""
    cfg = Config()
    cfg.set_main_option("script_location", "monitor.store:migrations")
    cfg.attributes["connection"] = connection
    return cfg


def head() -> str:
    rev = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert rev is not None
    return rev


def status(engine: Engine) -> SchemaStatus:
    with engine.connect() as conn:
        return _status(conn)


def _status(conn: Connection) -> SchemaStatus:
    top = head()
    current = MigrationContext.configure(conn).get_current_revision()
    if current is None:
        state = SchemaState.UNVERSIONED if inspect(conn).has_table(_MARKER_TABLE) else SchemaState.EMPTY
    elif current == top:
        state = SchemaState.CURRENT
    else:
        known = {s.revision for s in ScriptDirectory.from_config(alembic_config()).walk_revisions()}
        state = SchemaState.BEHIND if current in known else SchemaState.UNKNOWN
    return SchemaStatus(state, current, top)


def create_if_empty(engine: Engine) -> SchemaStatus:
    """An empty store is created at head; any other store is left as it is."""
    if engine.dialect.name == "sqlite":  # a store in use is not write-locked to be opened: its creator
        st = status(engine)  # committed all its tables at once, so what is read here is never half-made
        if st.state is not SchemaState.EMPTY:
            return st
    for attempt in range(40):
        try:
            with _schema_lock(engine) as conn:
                st = _status(conn)
                if st.state is SchemaState.EMPTY:
                    command.upgrade(alembic_config(conn), "head")
                    conn.commit()
                    return _status(conn)
                return st
        except (OperationalError, ProgrammingError, IntegrityError) as e:
            # SQLite has no lock across processes here: two opening a fresh file at once both
            # try, and the loser's "already exists" means the winner is doing it.
            if "already exists" not in str(e) and "duplicate" not in str(e).lower() or attempt == 39:
                raise
            time.sleep(0.05 * min(attempt + 1, 5))
    raise AssertionError("unreachable")


def upgrade(engine: Engine, revision: str = "head", *, lock_timeout_s: float = MIGRATION_LOCK_TIMEOUT_S,
            attempts: int = MIGRATION_ATTEMPTS) -> tuple[SchemaStatus, SchemaStatus]:
    """`vigil db upgrade`: the status before and after. An unversioned store is stamped at
    the baseline first (its tables are the baseline's), then upgraded like any other. On
    PostgreSQL each attempt waits at most `lock_timeout_s` for a table's lock (the replicas'
    statements queue behind a waiting ALTER), `attempts` times, else `MigrationLockBusy`."""
    for attempt in range(1, attempts + 1):
        try:
            return _upgrade_once(engine, revision, lock_timeout_s)
        except OperationalError as e:
            if getattr(e.orig, "sqlstate", None) != _LOCK_NOT_AVAILABLE:
                raise
            log.warning("schema upgrade gave way to a transaction holding a table it alters; trying again",
                        extra={"attempt": attempt, "lock_timeout_s": lock_timeout_s})
            if attempt == attempts:
                statement = " ".join(str(e.statement or "").split())[:200]
                raise MigrationLockBusy(
                    f"the upgrade waited {lock_timeout_s:g} s for a table's lock {attempts} times and gave way each "
                    f"time, so the replicas' statements would not queue behind it (waiting on: {statement}); a long "
                    "transaction holds the table (pg_stat_activity names it). Nothing was changed: run "
                    "`vigil db upgrade` again") from e
            time.sleep(min(1.0, lock_timeout_s))
    raise AssertionError("unreachable")


def _upgrade_once(engine: Engine, revision: str, lock_timeout_s: float) -> tuple[SchemaStatus, SchemaStatus]:
    with _schema_lock(engine) as conn:
        if conn.dialect.name == "postgresql":  # this transaction only: the migrations run inside it
            conn.execute(text(f"SET LOCAL lock_timeout = {max(1, int(lock_timeout_s * 1000))}"))
        before = _status(conn)
        if before.state is SchemaState.UNKNOWN:
            raise StoreBehind(f"the store is at revision {before.current}, which this Vigil does not know "
                              f"(head {before.head}): it was migrated by a newer Vigil; run that version")
        cfg = alembic_config(conn)
        if before.state is SchemaState.UNVERSIONED:
            command.stamp(cfg, BASELINE)
        command.upgrade(cfg, revision)
        conn.commit()
        return before, _status(conn)


def require_current(engine: Engine, how: str) -> None:
    """Raise `StoreBehind` unless the store is at head; `how` is the `--config FILE` or
    `--store URL` to put in the command the message names."""
    st = status(engine)
    if st.state is SchemaState.CURRENT:
        return
    if st.state is SchemaState.UNKNOWN:
        raise StoreBehind(f"the store is at schema revision {st.current}, newer than this Vigil knows (head "
                          f"{st.head}): it was migrated by a newer Vigil; run that version")
    where = "made before migrations (no revision)" if st.current is None else f"at schema revision {st.current}"
    raise StoreBehind(f"the store is {where}, this Vigil needs {st.head}: back it up, then run "
                      f"`vigil db upgrade {how}`")


@contextmanager
def _schema_lock(engine: Engine) -> Iterator[Connection]:
    """One connection; on PostgreSQL holding an advisory lock, so replicas starting together
    migrate or create the schema once, one after the other. On SQLite, inside a write
    transaction taken at once: its DDL would otherwise commit table by table, and a process
    opening the file meanwhile would read the half-made schema as one made before migrations."""
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            yield from _sqlite_schema_tx(conn)
            return
        if conn.dialect.name != "postgresql":
            yield conn
            return
        # No lock_timeout here (Store sets one on its connections): a replica starting while
        # `vigil db upgrade` runs waits for it to finish, then reads the schema it left.
        conn.execute(text("SET LOCAL lock_timeout = 0"))
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_LOCK_KEY})
        conn.commit()
        try:
            yield conn
        finally:
            conn.rollback()
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_LOCK_KEY})
            conn.commit()


def _sqlite_schema_tx(conn: Connection) -> Iterator[Connection]:
    """A write transaction taken at once, with foreign keys off: a migration rebuilding a
    table other rows point at (batch mode copies it, drops the old one, renames the copy)
    would otherwise fail the drop. SQLite only turns them off outside a transaction; each
    such migration runs `PRAGMA foreign_key_check` itself. The Store's setting is put back."""
    fk_on = bool(conn.exec_driver_sql("PRAGMA foreign_keys").scalar())
    conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
    conn.exec_driver_sql("BEGIN IMMEDIATE")  # waits (busy_timeout) for a creator to commit
    try:
        yield conn
    finally:
        conn.rollback()  # nothing, after the caller's commit
        if fk_on:
            conn.exec_driver_sql("PRAGMA foreign_keys=ON")
            conn.commit()
