"""The fleet's cap on SQLite (`sweep_workers` cycles at once in one daemon): the count and the
intent's insert were not serialised (the advisory lock is PostgreSQL's; pysqlite begins no
transaction before a write, so the count read outside any). Two cycles counting at once both
passed `fleet_max: 1` and both rolled back. The count now takes SQLite's write lock first."""
from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

import monitor.cycle.rollback_ask as ask_module
from alerts.rollback import ActionStatus, RollbackOutcome
from monitor.cycle.rollback_ask import FleetCap, RollbackAsk
from monitor.store.intents import AUTOMATIC
from tests.helpers_vigil import T0, MemoryRegistry, make_config, make_vigil, model_config


def test_two_cycles_counting_at_once_on_sqlite_do_not_pass_the_fleet_cap(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    names = ["a", "b"]
    reg = MemoryRegistry()
    vigil = make_vigil(make_config(tmp_path, models=[model_config(n) for n in names]), registry=reg)
    for n in names:
        for v in ("1", "2"):
            reg.add_version(n, v, created_at=T0 - 86400 * 30)
        reg.aliases[(n, "champion")] = "2"
    barrier, real = threading.Barrier(2, timeout=2), ask_module.automatic_rollbacks_since

    def counted_then_wait(s: Session, since: float) -> Any:
        out = real(s, since)
        # both counted before either inserts: the interleave that passed the cap; broken when the
        # second waits for the first's write lock instead (counted one after the other)
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait()
        return out

    monkeypatch.setattr(ask_module, "automatic_rollbacks_since", counted_then_wait)
    outs: dict[str, RollbackOutcome] = {}

    def rollback(n: str) -> None:
        outs[n] = vigil.rollbacks.request(RollbackAsk(vigil.config.model(n), "1", "auto", AUTOMATIC, None, T0,
                                                      max_attempts=3, fleet_cap=FleetCap(1, 3600)))

    threads = [threading.Thread(target=rollback, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(o.status for o in outs.values()) == [ActionStatus.DONE, ActionStatus.REFUSED], outs
    assert len(reg.moves) == 1, reg.moves
