"""A warm, quiet cycle's round trips to the store: a regression guard for sweep speed.

One replica sweeps 1,000 models a minute on 2 cores, and a third of a warm cycle's CPU was
the store's ORM statements. A quiet cycle used to read the model's open rollback intents
twice (reconcile, then "in flight?"), its state row four times, and the deploys twice
(the window's, then the last one). A statement added to every cycle is a thousand more a
minute: this test says so before a user sees the sweep slow down.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
from sqlalchemy import event

from tests.helpers_vigil import (
    CTR_QUERY,
    MODEL,
    P99_QUERY,
    T0,
    StubPrometheus,
    make_config,
    make_vigil,
    serving_registry,
)

QUIET_CYCLE_STATEMENTS = 17  # was 21: see README "Scale", statements per warm cycle


@contextmanager
def counted(engine: object) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        seen.append(" ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def quiet_vigil(tmp_path):
    flat = StubPrometheus({CTR_QUERY: lambda ts: np.full(len(ts), 0.05),
                           P99_QUERY: lambda ts: np.full(len(ts), 0.1)})
    return make_vigil(make_config(tmp_path), prometheus=flat, registry=serving_registry(), notifiers={})


def test_a_warm_quiet_cycle_stays_within_its_store_statements(tmp_path):
    vigil = quiet_vigil(tmp_path)
    for k in range(3):  # the first sight, then warm cycles
        vigil.run_cycle(MODEL, T0 + 60 * k)
    with counted(vigil.store.engine) as seen:
        report = vigil.run_cycle(MODEL, T0 + 180)
    assert report.step == "none" and report.incident_id is None
    assert len(seen) <= QUIET_CYCLE_STATEMENTS, "\n".join(seen)
    intents = [q for q in seen if q.startswith("SELECT rollback_intents.id")]
    assert len(intents) == 1, "the open rollback intents are read once, by the reconcile"
    deploys = [q for q in seen if q.startswith("SELECT deploy_events.")]
    assert len(deploys) == 1, "the last deploy, older than the story's window: the window holds none"
    states = [q for q in seen if q.startswith("SELECT model_state.")]
    assert len(states) == 3, "the state row: the poll's write, the cycle's start, the apply's write"
    assert not any(q.startswith("SELECT model_now.") for q in seen), "what the cycle saw: written, not read first"


def test_an_open_intent_is_still_read_again_after_the_reconcile(tmp_path):
    """The reconcile found an intent and drove it: whether one is still in flight is read again."""
    vigil = quiet_vigil(tmp_path)
    vigil.run_cycle(MODEL, T0)
    asked: list[str] = []
    reconcile, in_flight = vigil.rollbacks.reconcile, vigil.rollbacks.in_flight
    vigil.rollbacks.reconcile = lambda m, now: asked.append("reconcile") or [object()]  # type: ignore[method-assign]
    vigil.rollbacks.in_flight = lambda model: asked.append("in_flight") or in_flight(model)  # type: ignore
    vigil.run_cycle(MODEL, T0 + 60)
    assert asked == ["reconcile", "in_flight"]
    vigil.rollbacks.reconcile = reconcile  # type: ignore[method-assign]
    asked.clear()
    vigil.run_cycle(MODEL, T0 + 120)
    assert asked == [], "nothing open at the reconcile: no second read"
