"""Shared by the replica tests: a fresh PostgreSQL schema per test, memberships ticking on
threads, and a sampler that checks ownership at every observed instant."""
from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import text

from monitor.replicas import Membership, assign
from monitor.store import leases as sql
from monitor.store.repository import Store


def fresh_schema_url(postgres_url: str) -> str:
    """A URL whose connections use a new, empty schema: tests never see each other's rows."""
    schema = "r" + uuid.uuid4().hex[:10]
    base = Store(postgres_url)
    with base.engine.begin() as c:
        c.execute(text(f"create schema {schema}"))
    base.close()
    return f"{postgres_url}?options=-csearch_path%3D{schema}"


def sqlite_or_postgres_url(backend: str, tmp_path: Path, postgres_url: Callable[[], str]) -> str:
    """A fresh store's URL on `backend` ("sqlite" in `tmp_path`, or a new PostgreSQL schema):
    for fixtures parametrised over both (`postgres_url` is asked only when needed, so SQLite runs
    without a server)."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'vigil.db'}"
    return fresh_schema_url(postgres_url())


@contextmanager
def another_replica_auditing(url: str) -> Iterator[None]:
    """Another replica's Store on `url` appending audit entries (acks, silences, other models'
    rollbacks) about 200 a second, so each audited write under test races it for the chain's
    next seq."""
    other, stop = Store(url), threading.Event()

    def append() -> None:
        i = 0
        while not stop.wait(0.005):
            other.audit("api:bob", "incident.ack", f"incident:{i}", {"model": "other"}, now=1_800_000_000.0)
            i += 1

    writer = threading.Thread(target=append, daemon=True)
    writer.start()
    try:
        yield
    finally:
        stop.set()
        writer.join(5)
        other.close()


def wait_until(pred: Callable[[], bool], timeout: float, step: float = 0.02, what: str = "condition") -> float:
    """Seconds until `pred()` held; AssertionError naming `what` after `timeout`."""
    start = time.monotonic()
    while not pred():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"{what} not reached within {timeout} s")
        time.sleep(step)
    return time.monotonic() - start


class Ticker(threading.Thread):
    """One replica's scheduler job: `tick` every `renew_every`; `paused` stops it like a GC stall."""

    def __init__(self, m: Membership, models: list[str]) -> None:
        super().__init__(daemon=True)
        self.m, self.models = m, models
        self.stop, self.paused = threading.Event(), threading.Event()
        self.errors: list[BaseException] = []

    def run(self) -> None:
        while not self.stop.is_set():
            if not self.paused.is_set():
                try:
                    self.m.tick(self.models)
                except Exception as e:  # reported by the test, not lost in a thread
                    self.errors.append(e)
            self.stop.wait(self.m.timing.renew_every)

    def halt(self) -> None:
        self.stop.set()
        self.join(timeout=10)


def db_leases(store: Store) -> dict[str, sql.LeaseState]:
    with store.tx() as s:
        return {ls.model: ls for ls in sql.leases(s)}


def converged(store: Store, models: list[str], replicas: list[Membership]) -> bool:
    """Every model validly leased to the replica rendezvous assigns it, and each replica
    believes exactly that."""
    want = assign(models, [r.replica_id for r in replicas])
    rows = db_leases(store)
    if any(m not in rows or not rows[m].valid or rows[m].owner != want[m] for m in models):
        return False
    return all(set(r.owned()) == {m for m in models if want[m] == r.replica_id} for r in replicas)


class Sampler(threading.Thread):
    """Samples ownership every few ms and records every violation:

    - a model two replicas believe they hold at once. The replicas cannot be read in one
      instant, so each sample reads them in order and then in reverse: a handover between
      two reads can show the model twice in one pass (the old owner forgets it before
      releasing it, the new owner learns it after acquiring it), never in both;
    - a lease whose token went down, or changed hands without a new token (DB snapshot).
    """

    def __init__(self, store: Store, replicas: list[Membership]) -> None:
        super().__init__(daemon=True)
        self.store, self.replicas = store, list(replicas)
        self.stop = threading.Event()
        self.samples = 0
        self.violations: list[str] = []
        self._last: dict[str, tuple[str | None, int]] = {}

    def run(self) -> None:
        while not self.stop.is_set():
            self._beliefs()
            self._tokens()
            self.samples += 1
            self.stop.wait(0.01)

    def _beliefs(self) -> None:
        forward = [(r.replica_id, r.owned()) for r in self.replicas]
        backward = [(r.replica_id, r.owned()) for r in reversed(self.replicas)]

        def doubles(view: list[tuple[str, dict[str, int]]]) -> set[str]:
            seen: dict[str, str] = {}
            out = set()
            for rid, owned in view:
                for m in owned:
                    if m in seen:
                        out.add(m)
                    seen[m] = rid
            return out

        both = doubles(forward) & doubles(backward)
        if both:
            self.violations.append(f"held twice: {sorted(both)[:5]}")

    def _tokens(self) -> None:
        for m, ls in db_leases(self.store).items():
            if m in self._last:
                owner, token = self._last[m]
                if ls.token < token or (ls.token == token and ls.owner not in (owner, None)):
                    self.violations.append(f"{m}: ({owner}, {token}) -> ({ls.owner}, {ls.token})")
            self._last[m] = (ls.owner, ls.token)

    def halt(self) -> None:
        self.stop.set()
        self.join(timeout=10)
