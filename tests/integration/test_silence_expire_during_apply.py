"""A silence expired through the API, the CLI or Slack while a cycle is writing its plan
(it has locked the incident and read the live silences, the silence among them, and not
yet committed): the expiry took no lock, so it committed and answered "expired" while the
cycle went on to write a plan muted by it, one cycle late. It now waits for the cycle's
write, as a silence being made does: once it has answered, nothing the cycle planned with
the silence still in force lands afterwards."""
from __future__ import annotations

import threading
import time
from typing import Any

import pytest

import monitor.vigil as vigil_mod
from monitor import silence_ops
from monitor.failpoints import ENV
from monitor.silence_ops import SilenceAsk
from monitor.store.tables import IncidentRow
from tests.helpers_replicas import sqlite_or_postgres_url
from tests.helpers_vigil import MODEL, T0, incident_prometheus, make_config, make_vigil

pytestmark = pytest.mark.integration


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    return sqlite_or_postgres_url(request.param, tmp_path, lambda: request.getfixturevalue("postgres_url"))


def _written(vigil: Any, incident_id: int) -> tuple[Any, ...]:
    with vigil.store.tx() as s:
        state = vigil.store.model_state(s, MODEL)
        return state.last_cycle_at, tuple(s.get(IncidentRow, incident_id).reasons or [])


def test_an_expiry_made_while_the_cycle_writes_answers_after_the_muted_write(tmp_path, monkeypatch, store_url):
    cfg = make_config(tmp_path, store={"url": store_url},
                      policy={"slo_consecutive_cycles": 2, "resolve_after_cycles": 2, "repeat_interval": "5m"})
    vigil = make_vigil(cfg, prometheus=incident_prometheus())
    for k in range(6):
        vigil.run_cycle(MODEL, T0 + 60 * k)
    (row,) = vigil.store.incidents()
    made = silence_ops.create(vigil.store, SilenceAsk([f'model="{MODEL}"'], "deploy fix", "alice", duration="1h"),
                              "api:alice", T0 + 330)
    t1 = T0 + 360  # the critical's repeat is due, and the silence holds it
    applying, real = threading.Event(), vigil_mod.apply_plan

    def signal_then_apply(*a: Any, **k: Any) -> Any:
        applying.set()
        return real(*a, **k)

    monkeypatch.setattr(vigil_mod, "apply_plan", signal_then_apply)
    monkeypatch.setenv(ENV, "in_apply_tx=sleep:2")  # the apply holds its lock, silences read, 2 s
    cycle = threading.Thread(target=vigil.run_cycle, args=(MODEL, t1), daemon=True)
    cycle.start()
    assert applying.wait(30)
    time.sleep(0.5)  # inside the apply's transaction now, the silence read as active

    assert made.id is not None
    assert silence_ops.expire(vigil.store, made.id, "api:alice", t1) is not None
    at_answer = _written(vigil, row.id)
    cycle.join(30)
    assert not cycle.is_alive()
    monkeypatch.delenv(ENV)
    assert _written(vigil, row.id) == at_answer, \
        "the cycle wrote a plan muted by the silence after its expiry was answered"
    assert at_answer[0] == t1
