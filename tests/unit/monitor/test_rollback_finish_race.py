"""A pending rollback driven from two threads at once (the API's request still finishing
while the model's cycle reconciles it) records its outcome once: one deploy event and
one `rollback.done` audit entry. On SQLite the intent's "row lock" was a plain
read, so both threads found it pending and both recorded it done."""
from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from monitor.cycle.rollback_intents import RollbackAsk, RollbackRunner
from monitor.failpoints import ENV, FailPointError
from monitor.store.intents import open_intents
from tests.helpers_vigil import MODEL, T0, make_config, make_vigil, serving_registry


def test_a_rollback_finished_by_two_threads_at_once_is_recorded_once(tmp_path, monkeypatch):
    reg = serving_registry(version="2")
    v = make_vigil(make_config(tmp_path), registry=reg)
    m = v.config.model(MODEL)
    monkeypatch.setenv(ENV, "rollback_after_intent=raise")
    with pytest.raises(FailPointError):  # the intent is recorded, nothing moved yet
        v.operator.rollback(RollbackAsk(m, "1", "bad release", "api:alice", None, T0))
    monkeypatch.delenv(ENV)
    with v.store.tx() as s:
        (intent_id,) = [i.id for i in open_intents(s, MODEL)]

    finish_in = RollbackRunner.finish_in

    def slow_finish_in(self: RollbackRunner, *args: Any, **kw: Any) -> Any:
        time.sleep(0.3)  # the other thread reads the intent meanwhile
        return finish_in(self, *args, **kw)

    monkeypatch.setattr(RollbackRunner, "finish_in", slow_finish_in)
    outcomes: list[str] = []
    threads = [threading.Thread(target=lambda: outcomes.append(str(v.rollbacks.drive(intent_id, m, T0 + 1).status)))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert outcomes == ["done", "done"]
    assert [e.action for e in v.store.audit_entries()].count("rollback.done") == 1
    assert len(v.store.deploys(MODEL)) == 1  # the move, as one deploy event
    assert reg.aliases[(MODEL, "champion")] == "1"
