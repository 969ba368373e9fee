"""Two people pressing the same button at once on a SQLite store (the API's threads, a Slack
click and a CLI call): SQLite has no row locks, so each read what the other was about to
change, and both acks notified and both expiries were audited. The row is read under
SQLite's write lock now: the second press sees the first one's outcome."""
from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy.orm import Session

from monitor import silence_ops
from monitor.silence_ops import SilenceAsk
from monitor.store.silences import SilenceRow
from monitor.store.tables import IncidentRow
from tests.helpers_vigil import MODEL, T0, incident_prometheus, make_config, make_vigil


def both_at_once(monkeypatch: pytest.MonkeyPatch, row_type: type, press: Callable[[str], Any]) -> list[Any]:
    """Run `press("alice")` and `press("bob")` in two threads, each stopping right after it
    read `row_type`'s row until the other read it too (or 1 s: it is waiting for a lock)."""
    meet = threading.Barrier(2, timeout=1.0)
    real_get = Session.get

    def get(self: Session, entity: Any, ident: Any, **kw: Any) -> Any:
        row = real_get(self, entity, ident, **kw)
        if entity is row_type and threading.current_thread() is not threading.main_thread():
            with contextlib.suppress(threading.BrokenBarrierError):  # the other waits for our lock
                meet.wait()
        return row

    monkeypatch.setattr(Session, "get", get)
    out: list[Any] = []
    threads = [threading.Thread(target=lambda who=who: out.append(press(who))) for who in ("alice", "bob")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    monkeypatch.setattr(Session, "get", real_get)
    return out


def test_two_acks_at_once_notify_once_and_the_first_one_stays(tmp_path, monkeypatch):
    vigil = make_vigil(make_config(tmp_path), prometheus=incident_prometheus())
    vigil.run_cycle(MODEL, T0)
    (row,) = vigil.store.incidents()
    before = len(vigil.store.outbox_for_prefix(f"incident:{row.id}"))
    acked = both_at_once(monkeypatch, IncidentRow, lambda who: vigil.operator.acknowledge(row.id, who, T0 + 90))
    assert len(acked) == 2
    after = vigil.store.outbox_for_prefix(f"incident:{row.id}")
    per_channel = len({m.key for m in after})
    assert len(after) - before == per_channel, "each channel got one 'acknowledged' update, not two"
    first = acked[0].acknowledged_by
    assert vigil.store.incident(row.id).acknowledged_by == first and acked[1].acknowledged_by == first


def test_two_expiries_of_one_silence_at_once_are_audited_once(tmp_path, monkeypatch):
    vigil = make_vigil(make_config(tmp_path), prometheus=incident_prometheus())
    made = silence_ops.create(vigil.store, SilenceAsk(['model="fraud"'], "reindex", "olga", duration="1h"),
                              "api:olga", T0)
    assert made.id is not None
    both_at_once(monkeypatch, SilenceRow, lambda who: silence_ops.expire(vigil.store, made.id, who, T0 + 10))
    actions = [e.action for e in vigil.store.audit_entries()]
    assert actions.count("silence.expire") == 1


def test_two_silence_presses_at_once_make_one_silence(tmp_path, monkeypatch):
    """Two people pressing Silence on one incident at once (two workers, two replicas) each
    looked for the button's silence before the other made it: two silences, one of them
    still muting after the one Slack named was expired."""
    vigil = make_vigil(make_config(tmp_path), prometheus=incident_prometheus())
    vigil.run_cycle(MODEL, T0)
    (row,) = vigil.store.incidents()
    told = both_at_once(monkeypatch, IncidentRow,
                        lambda who: vigil.operator.slack_silence(row, f"slack:{who}", T0 + 90))
    with vigil.store.tx() as s:
        made = s.query(SilenceRow).all()
    assert len(made) == 1, told
    assert sum("Already silenced" in t for t in told) == 1
