"""How the daemon feeds its series to the online anomaly detector: values Prometheus
really returns (+Inf from histogram_quantile) must not corrupt a series' learnt state."""
from __future__ import annotations

import dataclasses

import numpy as np

from detectors.anomaly import AnomalyState
from detectors.records import FindingKind, Series
from monitor.cycle import gather
from monitor.sources.errors import SourceUnavailable
from tests.helpers_vigil import CTR_QUERY, MODEL, P99_QUERY, T0, StubPrometheus, make_config, make_vigil


def _ctr(ts: np.ndarray) -> np.ndarray:
    return 0.05 + np.random.default_rng(ts.astype(np.int64) % 9973).normal(0, 0.0003, len(ts))


def _p99(inf_at: float | None, jump_from: float):
    """p99 latency ~0.2 s; +Inf at one step (more than 1 % of requests past the top
    bucket: histogram_quantile's answer), ten times higher from `jump_from`."""
    def curve(ts: np.ndarray) -> np.ndarray:
        v = 0.2 + np.random.default_rng(ts.astype(np.int64) % 7919).normal(0, 0.01, len(ts))
        v = np.where(ts >= jump_from, 2.0, v)
        return np.where(ts == inf_at, np.inf, v) if inf_at is not None else v
    return curve


def _p99_anomalies(tmp_path, inf_at: float | None) -> list:
    jump = T0 + 6 * 3600
    tmp_path.mkdir()
    prom = StubPrometheus({CTR_QUERY: _ctr, P99_QUERY: _p99(inf_at, jump)})
    vigil = make_vigil(make_config(tmp_path), prometheus=prom, notifiers={})
    found = []
    for t in [T0 + i * 600 for i in range(6 * 6 + 2)]:
        report = vigil.run_cycle(MODEL, t)
        found += [f for f in report.findings if f.kind == FindingKind.METRIC_ANOMALY
                  and f.entity.startswith("p99") and f.window_end >= jump]
    return found


def test_one_infinite_p99_point_does_not_blind_the_detector_to_a_later_jump(tmp_path):
    assert _p99_anomalies(tmp_path / "clean", None)  # the jump is flagged on a clean series
    assert _p99_anomalies(tmp_path / "inf", T0 + 2 * 3600)  # ... and after a +Inf hours before it


class _HistoryFailsOnce(StubPrometheus):
    """Prometheus times out on the first day-long read (a heavy first sweep), then answers."""

    failed = False

    def query_range(self, query, start, end, step=None, *, name=None):
        if end - start >= 86400 and not self.failed:
            self.failed = True
            self.calls.append((query, start, end))
            raise SourceUnavailable("prometheus", "http://127.0.0.1:9", "read timed out")
        return super().query_range(query, start, end, step, name=name)


def _ctr_dropping(drop_from: float):
    def curve(ts: np.ndarray) -> np.ndarray:
        v = 0.05 + 0.004 * np.sin(2 * np.pi * ts / 86400.0) + _ctr(ts) - 0.05
        return np.where(ts >= drop_from, v * 0.85, v)
    return curve


def test_a_day_of_history_that_timed_out_at_first_sight_is_read_again_next_cycle(tmp_path):
    drop = T0 + 3 * 3600
    prom = _HistoryFailsOnce({CTR_QUERY: _ctr_dropping(drop), P99_QUERY: _p99(None, T0 + 86400)})
    vigil = make_vigil(make_config(tmp_path), prometheus=prom, notifiers={})
    vigil.run_cycle(MODEL, T0)  # the CTR's day of history: timed out
    vigil.run_cycle(MODEL, T0 + 600)
    days = [q for q, start, end in prom.calls if end - start >= 86400]
    assert days.count(CTR_QUERY) == 2  # asked again, not given up for a state learnt from 90 minutes
    found = []
    for t in [T0 + 1200 + i * 600 for i in range(19)]:
        found += [f for f in vigil.run_cycle(MODEL, t).findings
                  if f.kind == FindingKind.METRIC_ANOMALY and f.entity.startswith("ctr")]
    assert found and all(f.window_end >= drop for f in found)  # the drop at 3 h is flagged


class _HistoryAlwaysFails(_HistoryFailsOnce):
    def query_range(self, query, start, end, step=None, *, name=None):
        self.failed = False
        return super().query_range(query, start, end, step, name=name)


def test_a_day_of_history_that_never_comes_is_asked_a_few_cycles_then_the_window_is_learnt(tmp_path):
    prom = _HistoryAlwaysFails({CTR_QUERY: _ctr, P99_QUERY: _p99(None, T0 + 86400)})
    vigil = make_vigil(make_config(tmp_path), prometheus=prom, notifiers={})
    for t in [T0 + i * 600 for i in range(6)]:
        vigil.run_cycle(MODEL, t)
    days = [q for q, start, end in prom.calls if end - start >= 86400]
    assert days.count(CTR_QUERY) == gather.HISTORY_TRIES  # not a day-long query every cycle for ever


class _GridPrometheus(StubPrometheus):
    """As Prometheus evaluates a range query: at start, start + step, ... (not aligned to
    multiples of the step), so each cycle's points sit where its own clock put them."""

    def query_range(self, query, start, end, step=None, *, name=None):
        self.calls.append((query, start, end))
        curve = self.curves.get(query)
        if curve is None:
            return []
        step = step or self.step
        ts = start + step * np.arange(int((end - start) // step) + 1)
        return [Series(name or query, {}, ts, np.asarray(curve(ts), dtype=float))]


def test_a_cycle_a_little_late_does_not_score_the_minute_before_it_a_second_time(tmp_path):
    """Per-point scoring (`anomaly_resolution: 0`), one cycle a minute started a few
    hundred ms late or early (the scheduler's lag): each minute's value is learnt once."""
    prom = _GridPrometheus({CTR_QUERY: _ctr, P99_QUERY: _p99(None, T0 + 86400)})
    cfg = make_config(tmp_path, policy={"anomaly_resolution": 0})
    vigil = make_vigil(cfg, prometheus=prom, notifiers={})
    times = [T0 + 60 * i + (0.4 if i % 2 else 0.0) for i in range(21)]
    vigil.run_cycle(MODEL, times[0])
    seen = _points_seen(vigil)
    for t in times[1:]:
        vigil.run_cycle(MODEL, t)
    assert _points_seen(vigil) == seen + 20  # one new point a cycle, not 30


def _points_seen(vigil) -> int:
    with vigil.store.tx() as s:
        state = vigil.store.detector_state(s, MODEL)
    (key,) = [k for k in state if k.startswith("ctr|")]
    return AnomalyState.from_dict(state[key]).series.points_seen


def test_a_stored_state_too_old_to_resume_is_relearnt_from_a_day_of_history(tmp_path):
    """A state of a format this version cannot continue (version 2) is learnt afresh, as at
    first sight: from a day of history, not from the window alone (blind for hours)."""
    drop = T0 + 3 * 3600
    cfg = make_config(tmp_path)
    curves = {CTR_QUERY: _ctr_dropping(drop), P99_QUERY: _p99(None, T0 + 86400)}
    first = make_vigil(cfg, prometheus=StubPrometheus(curves), notifiers={})
    first.run_cycle(MODEL, T0)
    with first.store.tx() as s:
        state = first.store.detector_state(s, MODEL)
        (key,) = [k for k in state if k.startswith("ctr|")]
        state[key] = {"detector": {**state[key]["detector"], "version": 2}, "run_onset": None}
        first.store.save_detector_state(s, MODEL, state)
    first.store.close()
    prom = StubPrometheus(curves)
    restarted = make_vigil(cfg, prometheus=prom, notifiers={})
    found = []
    for t in [T0 + 600 + i * 600 for i in range(20)]:
        found += [f for f in restarted.run_cycle(MODEL, t).findings
                  if f.kind == FindingKind.METRIC_ANOMALY and f.entity.startswith("ctr")]
    assert [q for q, start, end in prom.calls if end - start >= 86400] == [CTR_QUERY]
    assert found and all(f.window_end >= drop for f in found)  # the drop at 3 h is flagged


def test_a_series_queried_at_a_5_minute_step_is_scored_every_5_minutes_not_every_cycle(tmp_path):
    """step 5m, a cycle a minute: Prometheus evaluates each cycle's range from its own
    start, so every cycle ends on a point of its own; scored each, the detector judged a
    point a minute (five times the false alarms a 5-minute series is tuned for)."""
    prom = _GridPrometheus({CTR_QUERY: _ctr, P99_QUERY: _p99(None, T0 + 86400)}, step=300.0)
    cfg = make_config(tmp_path, sources={"prometheus": {"url": "http://127.0.0.1:9", "step": "5m"}})
    vigil = make_vigil(cfg, prometheus=prom, notifiers={})
    vigil.run_cycle(MODEL, T0)
    seen = _points_seen(vigil)
    for i in range(1, 31):
        vigil.run_cycle(MODEL, T0 + 60 * i + (0.4 if i % 2 else 0.0))
    assert _points_seen(vigil) == seen + 6  # 30 minutes at a 5-minute step


class _HistoryPartialOnce(StubPrometheus):
    """The first day-long read comes from an answer a store missed (Thanos `warnings`): half of
    the day's requests are not in it, then the store is back."""

    partial_given = False

    def query_range(self, query, start, end, step=None, *, name=None):
        found = super().query_range(query, start, end, step, name=name)
        if end - start < 86400 or self.partial_given:
            return found
        self.partial_given = True
        return [dataclasses.replace(s, values=s.values / 2, partial="store 10.0.3.7:10901: connection refused")
                for s in found]


def test_a_day_of_history_read_from_a_partial_answer_is_read_again_next_cycle(tmp_path):
    """A band learnt from a day a store missed is the wrong band for weeks (the state is kept
    and no history is read for it again): asked again, as a day that timed out is."""
    prom = _HistoryPartialOnce({CTR_QUERY: _ctr, P99_QUERY: _p99(None, T0 + 86400)})
    vigil = make_vigil(make_config(tmp_path), prometheus=prom, notifiers={})
    vigil.run_cycle(MODEL, T0)
    vigil.run_cycle(MODEL, T0 + 600)
    days = [q for q, start, end in prom.calls if end - start >= 86400]
    assert days.count(CTR_QUERY) == 2


class _StoreDownForHours(StubPrometheus):
    """A Thanos store holding half of the clicks is down over [down_from, down_until): the
    answers say so (`warnings`) and CTR reads half of what it is."""

    def __init__(self, curves, down_from: float, down_until: float) -> None:
        super().__init__(curves)
        self.outage = (down_from, down_until)

    def query_range(self, query, start, end, step=None, *, name=None):
        found = super().query_range(query, start, end, step, name=name)
        if not self.outage[0] <= end < self.outage[1] or query != CTR_QUERY:
            return found
        return [dataclasses.replace(s, values=s.values / 2, partial="store 10.0.3.7:10901: connection refused")
                for s in found]


def test_a_window_read_from_a_partial_answer_does_not_teach_the_detector_its_normal(tmp_path):
    """Four hours of CTR read at half (a store down) were learnt as the series' normal: when
    CTR really halved an hour after the store came back, the detector no longer found it
    unusual. A window read partially is scored (alerting goes on), not learnt."""
    drop = T0 + 5 * 3600
    curve = _ctr_dropping(drop)
    prom = _StoreDownForHours({CTR_QUERY: lambda ts: np.where(ts >= drop, curve(ts) / 0.85 / 2, curve(ts)),
                               P99_QUERY: _p99(None, T0 + 86400)}, T0 + 600, T0 + 4 * 3600)
    vigil = make_vigil(make_config(tmp_path), prometheus=prom, notifiers={})
    found = []
    for t in [T0 + i * 600 for i in range(6 * 6 + 1)]:
        found += [f for f in vigil.run_cycle(MODEL, t).findings
                  if f.kind == FindingKind.METRIC_ANOMALY and f.entity.startswith("ctr") and f.window_end >= drop]
    assert found  # the real halving, after the store came back


def test_a_series_first_seen_during_an_outage_asks_its_day_of_history_once_the_store_is_back(tmp_path):
    """A series the detector has no state for, read partially, is not learnt (the test above), so
    its day of history was asked again every cycle of the outage (a day-long range query per
    signal per cycle against the Thanos that was already short a store) for nothing: no state is
    stored from a partial window. It is asked once the window reads whole, and then learnt."""
    back = T0 + 2 * 3600
    prom = _StoreDownForHours({CTR_QUERY: _ctr, P99_QUERY: _p99(None, T0 + 86400)}, T0 - 600, back)
    vigil = make_vigil(make_config(tmp_path), prometheus=prom, notifiers={})
    days_of_ctr = []
    for t in [T0 + i * 600 for i in range(16)]:
        before = len(prom.calls)
        vigil.run_cycle(MODEL, t)
        days_of_ctr.append(sum(1 for q, start, end in prom.calls[before:] if q == CTR_QUERY and end - start >= 86400))
    outage = [n for t, n in zip([T0 + i * 600 for i in range(16)], days_of_ctr, strict=True) if t < back]
    assert sum(outage) == 0, f"a day of CTR history asked in {sum(outage)} of {len(outage)} cycles of the outage"
    assert sum(days_of_ctr) == 1, days_of_ctr  # once the store is back, then the state is kept
