"""Processes opening one new SQLite store at once (`vigil run` and `vigil serve` started
together on a fresh file, a CLI command during the first start): one creates the schema,
the others wait for it and find it at head. Before, they read the half-made schema (its
tables committed one by one, the revision last) as "made before migrations" and the
daemon refused to start, telling the operator to run `vigil db upgrade`."""
from __future__ import annotations

import multiprocessing as mp
from pathlib import Path
from typing import Any

from monitor.store import repository  # noqa: F401  (imported before the fork: the children start at once)

PROCESSES = 3
TRIALS = 6


def _open(url: str, out: Any) -> None:
    from monitor.store.repository import Store
    from monitor.store.schema import StoreBehind, require_current

    try:
        store = Store(url)
        try:
            require_current(store.engine, f"--store {url}")
            out.put("ok")
        finally:
            store.close()
    except StoreBehind as e:
        out.put(f"refused: {e}")
    except Exception as e:  # noqa: BLE001 - reported, not raised: the parent asserts on it
        out.put(f"{type(e).__name__}: {e}")


def test_processes_opening_a_new_sqlite_store_together_all_find_it_at_head(tmp_path: Path) -> None:
    ctx = mp.get_context("fork")  # the parent never opened these files
    seen: list[str] = []
    for trial in range(TRIALS):
        url = f"sqlite:///{tmp_path / f'vigil-{trial}.db'}"
        out = ctx.Queue()
        procs = [ctx.Process(target=_open, args=(url, out)) for _ in range(PROCESSES)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
        seen += [out.get(timeout=5) for _ in procs]
    assert [s for s in seen if s != "ok"] == []
