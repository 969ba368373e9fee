"""The detectors' state at rest (monitor/store/detector_states.py): it reads back exactly
as the cycle left it, a cycle with nothing new writes none of it, a cycle with one new
point writes a small row per series and not its seasonal profiles, a store written
before (one JSON document per model) still reads, and a failed transaction leaves the
previous state."""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import event, select, text

from detectors.anomaly import AnomalyParams, AnomalyState, OnlineAnomalyDetector
from detectors.records import Series
from monitor.store import detector_states
from monitor.store.repository import ModelStateRow, Store
from tests.helpers_vigil import CTR_QUERY, MODEL, P99_QUERY, T0, StubPrometheus, make_config, make_vigil

DAY = 86400.0


@contextmanager
def writes(store: Store) -> Iterator[Counter[str]]:
    """Statements that write a row, per table, and bytes of the values they carry (key `bytes:<table>`)."""
    seen: Counter[str] = Counter()
    pattern = re.compile(r"^\s*(?:INSERT INTO|UPDATE|DELETE FROM)\s+(\w+)", re.IGNORECASE)

    def on_execute(_c: Any, _cur: Any, statement: str, params: Any, _ctx: Any, many: bool) -> None:
        m = pattern.match(statement)
        if m:
            rows = params if many else [params]
            seen[m.group(1)] += len(rows)
            values = [v for r in rows for v in (r.values() if isinstance(r, dict) else r)]
            seen[f"bytes:{m.group(1)}"] += sum(_size(v) for v in values)

    event.listen(store.engine, "before_cursor_execute", on_execute)
    try:
        yield seen
    finally:
        event.remove(store.engine, "before_cursor_execute", on_execute)


def _size(v: Any) -> int:
    if isinstance(v, bytes | bytearray | memoryview):
        return len(bytes(v))  # SQLite binds blobs as memoryview
    return len(v.encode()) if isinstance(v, str) else 8


def seasonal(start: float, end: float, seed: int = 1) -> Series:
    ts = np.arange(start, end, 60.0)
    rng = np.random.default_rng(seed)
    v = 100 + 10 * np.sin(2 * np.pi * ts / DAY) + rng.normal(0, 1, len(ts))
    return Series("rps", {}, ts, v)


def week_old_state() -> tuple[OnlineAnomalyDetector, AnomalyState, Series]:
    """A state that has seen a week of points: its daily and weekly profiles are full."""
    det = OnlineAnomalyDetector(AnomalyParams())
    history = seasonal(T0 - 7 * DAY, T0 + 3600)
    return det, det.fit(history, T0 - 7 * DAY, T0), history


def save(store: Store, state: dict[str, Any], model: str = MODEL) -> int:
    with store.tx() as s:
        return store.save_detector_state(s, model, state)


def load(store: Store, model: str = MODEL) -> dict[str, Any]:
    with store.tx() as s:
        return store.detector_state(s, model)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    st = Store(f"sqlite:///{tmp_path / 'v.db'}")
    yield st
    st.close()


def test_a_state_reads_back_exactly_and_scores_the_same_as_the_one_kept_in_memory(store: Store) -> None:
    det, state, history = week_old_state()
    stored = {"rps|{}": state.to_dict(), "@logs": {"fitted_on": [T0 - 600, T0 - 300], "templates": {"a": 3}}}
    assert np.isnan(state.series.daily).any() is np.False_  # a week: every bin seen
    save(store, stored)
    back = load(store)
    assert back == stored
    resumed = AnomalyState.from_dict(back["rps|{}"])
    next_hour = history.between(T0 + 1, T0 + 3600)
    kept = det.score_points(state, next_hour.timestamps, next_hour.values)
    assert np.array_equal(det.score_points(resumed, next_hour.timestamps, next_hour.values), kept)


def test_unseen_bins_and_a_run_under_way_survive_the_round_trip(store: Store) -> None:
    det = OnlineAnomalyDetector(AnomalyParams())
    state = det.fit(seasonal(T0 - 3 * 3600, T0), T0 - 3 * 3600, T0)  # three hours: most bins unseen
    state.run_onset = T0 - 120.0
    d = state.to_dict()
    assert None in d["detector"]["daily"]
    save(store, {"rps|{}": d})
    assert load(store) == {"rps|{}": d}


def test_nothing_new_writes_nothing_and_one_new_point_writes_a_small_row_per_series(store: Store) -> None:
    det, state, history = week_old_state()
    save(store, {"rps|{}": state.to_dict()})
    with writes(store) as seen:
        assert save(store, {"rps|{}": state.to_dict()}) == 0
    assert seen["detector_states"] == 0 and seen["model_state"] == 0

    point = history.between(T0 + 1, T0 + 60)
    det.score_points(state, point.timestamps, point.values)
    with writes(store) as seen:
        assert save(store, {"rps|{}": state.to_dict()}) == 1  # the state row; its profiles stay
    assert seen["detector_states"] == 1
    json_size = len(str(state.to_dict()))
    assert seen["bytes:detector_states"] < 1600 < json_size / 5, (seen, json_size)
    assert load(store) == {"rps|{}": state.to_dict()}


def test_the_profiles_row_is_rewritten_once_enough_bins_moved_and_every_step_reads_back(store: Store) -> None:
    det, state, history = week_old_state()
    later = seasonal(T0, T0 + DAY, seed=2)
    save(store, {"rps|{}": state.to_dict()})
    profile_writes = 0
    for k in range(0, 24 * 60, 30):  # a day, half an hour at a time
        chunk = later.between(T0 + k * 60 + 1, T0 + (k + 30) * 60)
        det.score_points(state, chunk.timestamps, chunk.values)
        with writes(store) as seen:
            save(store, {"rps|{}": state.to_dict()})
        profile_writes += seen["detector_states"] - 1
        assert load(store) == {"rps|{}": state.to_dict()}
    # a day moves 144 daily and 24 weekly bins: a few rewrites of the profiles, not 48
    assert 1 <= profile_writes <= 168 // detector_states.PATCH_LIMIT + 1


def test_a_key_the_state_no_longer_has_is_deleted(store: Store) -> None:
    _, state, _ = week_old_state()
    save(store, {"rps|{}": state.to_dict(), "@traces": {"x": 1}})
    save(store, {"@traces": {"x": 2}})
    assert load(store) == {"@traces": {"x": 2}}
    with store.engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM detector_states")).scalar() == 1


def test_a_store_written_before_reads_its_json_and_the_next_write_moves_it(store: Store) -> None:
    _, state, _ = week_old_state()
    legacy = {"rps|{}": state.to_dict(), "@logs": {"fitted_on": [1.0, 2.0]}}
    with store.tx() as s:
        s.add(ModelStateRow(model=MODEL, slo_streaks={}, detector_state=legacy, quiet_cycles=0))
    assert load(store) == legacy
    save(store, legacy)
    with store.tx() as s:
        assert s.get(ModelStateRow, MODEL).detector_state == {}
    assert load(store) == legacy


def test_a_failed_transaction_keeps_the_state_before_it(store: Store) -> None:
    det, state, history = week_old_state()
    before = state.to_dict()
    save(store, {"rps|{}": before})
    point = history.between(T0 + 1, T0 + 60)
    det.score_points(state, point.timestamps, point.values)
    with pytest.raises(RuntimeError), store.tx() as s:
        store.save_detector_state(s, MODEL, {"rps|{}": state.to_dict()})
        raise RuntimeError("crash before the commit")
    assert load(store) == {"rps|{}": before}


def test_an_unknown_format_marker_is_an_error_naming_it(store: Store) -> None:
    with store.tx() as s:
        s.add(detector_states.DetectorStateRow(model=MODEL, key="k", part="state", data=b"Zjunk"))
    with pytest.raises(ValueError, match="unknown format marker b'Z'"):
        load(store)


def test_a_cycle_with_no_new_point_writes_no_detector_state(tmp_path: Path) -> None:
    flat = lambda ts: np.full(len(ts), 0.1)  # noqa: E731
    vigil = make_vigil(make_config(tmp_path), prometheus=StubPrometheus({CTR_QUERY: flat, P99_QUERY: flat}),
                       notifiers={})
    vigil.run_cycle(MODEL, T0)
    with writes(vigil.store) as seen:
        vigil.run_cycle(MODEL, T0)  # the same minute again: no point the state has not seen
    assert seen["detector_states"] == 0
    with writes(vigil.store) as seen:
        vigil.run_cycle(MODEL, T0 + 60)  # a new minute inside a 5-minute bin still open (policy.anomaly_resolution)
    assert seen["detector_states"] == 0
    with writes(vigil.store) as seen:
        vigil.run_cycle(MODEL, T0 + 300)  # the bin is complete: one new point per series
    assert 1 <= seen["detector_states"] <= 2 and seen["bytes:detector_states"] < 2 * 1600, seen


def test_reference_profiles_are_stored_compressed_and_rows_from_before_still_read(store: Store) -> None:
    blob = b"".join(np.sort(np.random.default_rng(0).normal(size=20_000)).round(4).tobytes() for _ in range(3))
    store.save_profile(MODEL, "3", "/ref.parquet", blob, T0)
    assert store.profile(MODEL, "3", "/ref.parquet") == blob
    with store.engine.connect() as c:
        raw, gz = c.execute(text("SELECT profile, profile_gz FROM reference_profiles")).one()
        c.execute(text("INSERT INTO reference_profiles (model, version, source, profile, created_at) "
                       "VALUES ('old', '1', '/r', :p, 0)"), {"p": b"as before"})
        c.commit()
    assert raw == b"" and len(gz) < len(blob) / 2
    assert store.profile("old", "1", "/r") == b"as before"


def test_a_warm_cycle_writes_in_two_transactions_and_counts_the_clean_cycle_with_its_state(tmp_path: Path) -> None:
    """The reads before planning share one transaction; the clean-cycle count for the
    serving version commits with the state (a crash cannot keep one without the other)."""
    from monitor.store.intents import KnownGoodRow

    flat = lambda ts: np.full(len(ts), 0.1)  # noqa: E731
    vigil = make_vigil(make_config(tmp_path), prometheus=StubPrometheus({CTR_QUERY: flat, P99_QUERY: flat}),
                       notifiers={})
    vigil.run_cycle(MODEL, T0)
    begun, committed_with_rows = [0], [0]
    wrote = [False]

    def on_begin(_c: Any) -> None:
        begun[0] += 1

    def on_execute(_c: Any, _cur: Any, statement: str, *_: Any) -> None:
        wrote[0] = wrote[0] or statement.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))

    def on_commit(_c: Any) -> None:
        committed_with_rows[0] += wrote[0]
        wrote[0] = False

    engine = vigil.store.engine
    for name, fn in (("begin", on_begin), ("before_cursor_execute", on_execute), ("commit", on_commit)):
        event.listen(engine, name, fn)
    vigil.run_cycle(MODEL, T0 + 60)
    for name, fn in (("begin", on_begin), ("before_cursor_execute", on_execute), ("commit", on_commit)):
        event.remove(engine, name, fn)
    assert committed_with_rows[0] == 2  # the apply transaction, then what the cycle saw (model_now)
    assert begun[0] <= 7, begun  # 12 before the reads were folded
    with vigil.store.tx() as s:
        (good,) = s.scalars(select(KnownGoodRow)).all()
        assert good.clean_cycles == 2 and good.last_clean_at == T0 + 60
