"""A silence made through the API or the CLI while a cycle is writing its plan (it has
locked the incident and read the live silences, and not yet committed): it took no lock,
so it committed, answered 201, and the cycle's reminder planned without it still went out.
It now waits for the cycle's write, like the Slack button: once it has answered, the cycle
that comes next plans with it, and nothing more is queued for a matched incident."""
from __future__ import annotations

import threading
import time
from typing import Any

import pytest

import monitor.vigil as vigil_mod
from monitor import silence_ops
from monitor.failpoints import ENV
from monitor.silence_ops import SilenceAsk
from tests.helpers_replicas import sqlite_or_postgres_url
from tests.helpers_vigil import MODEL, T0, incident_prometheus, make_config, make_vigil

pytestmark = pytest.mark.integration


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    return sqlite_or_postgres_url(request.param, tmp_path, lambda: request.getfixturevalue("postgres_url"))


def test_a_silence_made_while_the_cycle_writes_answers_after_its_reminder_and_nothing_follows(
        tmp_path, monkeypatch, store_url):
    cfg = make_config(tmp_path, store={"url": store_url},
                      policy={"slo_consecutive_cycles": 2, "resolve_after_cycles": 2, "repeat_interval": "5m"})
    vigil = make_vigil(cfg, prometheus=incident_prometheus())
    for k in range(6):
        vigil.run_cycle(MODEL, T0 + 60 * k)
    (row,) = vigil.store.incidents()
    t1 = T0 + 360  # the critical's repeat is due: the plan reminds people of it
    applying, real = threading.Event(), vigil_mod.apply_plan

    def signal_then_apply(*a: Any, **k: Any) -> Any:
        applying.set()
        return real(*a, **k)

    monkeypatch.setattr(vigil_mod, "apply_plan", signal_then_apply)
    monkeypatch.setenv(ENV, "in_apply_tx=sleep:2")  # the apply holds its lock, silences read, 2 s
    cycle = threading.Thread(target=vigil.run_cycle, args=(MODEL, t1), daemon=True)
    cycle.start()
    assert applying.wait(30)
    time.sleep(0.5)  # inside the apply's transaction now, its silences read

    silence_ops.create(vigil.store, SilenceAsk([f'model="{MODEL}"'], "deploy fix", "alice", duration="1h"),
                       "api:alice", t1)
    queued_at_answer = len(vigil.store.outbox_for_prefix(f"incident:{row.id}"))
    cycle.join(30)
    assert not cycle.is_alive()
    monkeypatch.delenv(ENV)
    assert len(vigil.store.outbox_for_prefix(f"incident:{row.id}")) == queued_at_answer, \
        "the cycle queued the reminder after the silence was answered"
    vigil.run_cycle(MODEL, t1 + 400)  # the next reminder is due: the silence holds it
    assert len(vigil.store.outbox_for_prefix(f"incident:{row.id}")) == queued_at_answer
