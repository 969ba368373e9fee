"""A lock held on PostgreSQL by somebody else (a person's `psql` left inside a transaction,
an old replica) no longer stalls the cycles waiting for it: only the 120 s idle-transaction
timeout of Vigil's own sessions bounded a wait, and a foreign session has none, so every
replica's cycle of the model queued behind it, silently, for as long as it was held. Every
connection of Vigil's now waits at most `leases.LOCK_TIMEOUT_S` for a lock; the cycle fails
loudly (vigil_cycle_errors_total, the log), writes nothing, and the next one after the lock is
gone raises the alert."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from monitor.daemon import _safe_cycle
from monitor.store import leases, schema
from monitor.store.repository import Store
from tests.fixtures_postgres import postgres_url  # noqa: F401  (fixture)
from tests.helpers_replicas import fresh_schema_url
from tests.helpers_vigil import MODEL, T0, incident_prometheus, make_config, make_vigil, metric_value

BOUND_S = 1.0


def test_a_cycle_waits_a_bounded_time_for_a_lock_held_elsewhere_then_the_next_one_alerts(
        tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    monkeypatch.setattr(leases, "LOCK_TIMEOUT_S", BOUND_S, raising=False)  # the test's scale
    url = fresh_schema_url(postgres_url)
    vigil = make_vigil(make_config(tmp_path, store={"url": url}),
                       prometheus=incident_prometheus(bad_from=T0 - 300))
    vigil.run_cycle(MODEL, T0 - 600)  # healthy; its connection is in the pool
    person = create_engine(url).connect()  # psql: BEGIN; LOCK TABLE incidents; ... (gone to lunch)
    person.execute(text("LOCK TABLE incidents IN ACCESS EXCLUSIVE MODE"))
    cycle = threading.Thread(target=_safe_cycle, args=(vigil, MODEL), daemon=True)
    try:
        vigil.clock.set(T0 - 300)
        began = time.monotonic()
        cycle.start()
        cycle.join(BOUND_S + 10)
        waited = time.monotonic() - began
    finally:
        person.rollback()
        person.close()
    cycle.join(30)
    assert waited < BOUND_S + 10, f"the cycle still waited for the lock after {waited:.0f} s"
    assert metric_value(vigil, "vigil_cycle_errors_total", model=MODEL) == 1  # loud, not silent
    assert vigil.store.all_incidents() == []  # nothing half-written
    for t in (T0 - 300, T0):  # the lock is gone: the cycles that follow see the breach and page
        vigil.run_cycle(MODEL, t)
    [incident] = vigil.store.all_incidents()
    assert incident.status == "open"
    assert sum(vigil.store.outbox_counts().values()) > 0
    vigil.store.close()


def test_a_replica_starting_during_an_upgrade_still_waits_for_it(postgres_url: str,  # noqa: F811
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The bound is for a stuck lock, not for `vigil db upgrade`: a replica opening the store
    while an upgrade holds the schema's advisory lock waits for it to end, as before."""
    monkeypatch.setattr(leases, "LOCK_TIMEOUT_S", 0.3)
    url = fresh_schema_url(postgres_url)
    Store(url).close()
    upgrading = create_engine(url).connect()
    upgrading.execute(text("SELECT pg_advisory_lock(:k)"), {"k": schema._PG_LOCK_KEY})
    upgrading.commit()
    opened: list[object] = []

    def start() -> None:
        try:
            opened.append(Store(url))
        except Exception as e:  # the failure the test reports
            opened.append(e)

    replica = threading.Thread(target=start, daemon=True)
    replica.start()
    time.sleep(1.5)  # an upgrade taking longer than the bound
    upgrading.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": schema._PG_LOCK_KEY})
    upgrading.close()
    replica.join(20)
    [store] = opened
    assert isinstance(store, Store), store
    store.close()
