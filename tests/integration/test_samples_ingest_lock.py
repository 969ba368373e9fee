"""A large POST /v1/samples (up to 100,000 records) on SQLite must not hold the store's
write lock for seconds: the daemon's cycles and its outbox sender write to the same file
and give up after SQLite's busy timeout (10 s), failing cycles and delaying pages."""
from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from monitor.store.repository import Store

ROWS = 60_000
MAX_HOLD_S = 2.5  # the insert itself: well under the busy timeout even on a loaded machine


def test_a_large_sample_batch_holds_the_write_lock_briefly(tmp_path: Path) -> None:
    db = tmp_path / "vigil.db"
    store = Store(f"sqlite:///{db}")
    records = [(1.8e9 + i, {f"f{j}": float(i * j) for j in range(20)}) for i in range(ROWS)]
    held: list[float] = []  # times (s) another writer found the write lock taken
    stop = threading.Event()

    def other_writer() -> None:
        conn = sqlite3.connect(db, timeout=0)
        while not stop.is_set():
            try:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("ROLLBACK")
            except sqlite3.OperationalError:
                held.append(time.monotonic())
            time.sleep(0.05)
        conn.close()

    probe = threading.Thread(target=other_writer)
    probe.start()
    try:
        assert store.add_samples("fraud", records) == ROWS
    finally:
        stop.set()
        probe.join(5)
    longest = held[-1] - held[0] if held else 0.0
    assert longest < MAX_HOLD_S, f"the write lock was held {longest:.1f} s"
    assert len(store.samples("fraud", 0, 3e9)) == ROWS
    store.close()
