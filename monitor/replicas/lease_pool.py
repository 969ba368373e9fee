"""The lease heartbeat's own connection to PostgreSQL.

Cycles, the API and the outbox sender share the store's pool (5 + 10 connections). With more
of them at once than that (`schedule.sweep_workers` is the core count by default) a heartbeat
taking its connection from that pool queued behind them, and the replica's leases ran out
while it waited: its models went to another replica, or back to itself under new tokens,
refusing the cycles in flight. The heartbeat needs one connection at a time (its calls are
serialised), so it gets a pool of its own that nothing else can use up.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol

from sqlalchemy import create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from monitor.store.leases import bound_idle_transactions
from monitor.store.repository import Store


class LeaseDb(Protocol):
    def tx(self) -> AbstractContextManager[Session]: ...


class OwnPool:
    """`tx()` on the store's database through one connection (and one spare) of its own."""

    def __init__(self, store: Store) -> None:
        self.engine = create_engine(store.url, pool_size=1, max_overflow=1, pool_pre_ping=True)
        event.listen(self.engine, "connect", bound_idle_transactions)
        self._session = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def tx(self) -> Iterator[Session]:
        with self._session.begin() as s:
            yield s

    def close(self) -> None:
        self.engine.dispose()


def lease_db(store: Store) -> LeaseDb:
    """A pool of its own on PostgreSQL; SQLite (one daemon per file, tests) uses the store's."""
    return OwnPool(store) if store.engine.dialect.name == "postgresql" else store
