"""The detector contract (detectors/base.py), checked on every detector.

- parameters: one frozen dataclass, passed whole;
- fit(reference, start, end) -> a state that survives JSON (to_dict/from_dict) and scores
  exactly as the state it came from;
- score(state, window, start, end) -> list[Finding], the same argument order everywhere.
"""
from __future__ import annotations

import copy
import dataclasses
import inspect
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest

from detectors.anomaly import AnomalyParams, AnomalyState, OnlineAnomalyDetector
from detectors.base import Detector, FittedState, NoState
from detectors.drift import DriftDetector, DriftParams, FeatureSpec, ReferenceProfile
from detectors.gpu import GpuDetector, GpuParams, GpuSignal
from detectors.kpi import KpiDetector, KpiParams, KpiState
from detectors.logs import LogDetector, LogReference, LogState, LogWindow
from detectors.records import Direction, Finding, LogRecord, Series
from detectors.service_metrics import ServiceMetricsDetector, ServiceMetricsState
from detectors.slo import SloDetector, SloParams
from detectors.traces import TraceDetector, TraceState, TraceWindow
from tests.synthetic_traces import synthetic_traces
from tests.unit.detectors.test_log_detector import W0, _handler_runs, _loop_runs, _normal

T0 = 1_800_000_000.0
TS = T0 + 60.0 * np.arange(120)  # two hours of minutes: the first is the reference, the second the window
REF, WIN = (TS[0], TS[59]), (TS[60], TS[-1])


def _series(values, labels=None, t=TS, name="x") -> Series:
    return Series(name, labels or {}, np.asarray(t, float), np.asarray(values, float))


@dataclass
class Case:
    """A detector, a reference and a window on which it finds something."""

    detector: Any
    state_type: type
    reference: Any
    window: Any
    ref: tuple[float, float]
    win: tuple[float, float]


def _kpi() -> Case:
    v = np.full(120, 0.05)
    v[90:] = 0.04  # -20 %
    det = KpiDetector(KpiParams(kpi="ctr", bad_direction=Direction.DOWN, threshold_pct=5, recent=600, model="m"))
    return Case(det, KpiState, _series(v), _series(v), REF, WIN)


def _slo() -> Case:
    v = np.full(120, 0.3)
    v[100:] = 0.9
    det = SloDetector(SloParams(slo="p99", threshold=0.5, above=True, step=60, unit="s", model="m"))
    return Case(det, NoState, None, _series(v), REF, WIN)


def _gpu() -> Case:
    v = np.full(120, 40.0)
    v[100:] = 99.0
    det = GpuDetector(GpuParams(GpuSignal("gpu_util_pct", 95, "%"), min_duration=300, model="m"))
    return Case(det, NoState, None, [_series(v, {"Hostname": "n1", "gpu": "0"})], REF, WIN)


def _service_metrics() -> Case:
    rng = np.random.default_rng(0)
    ref = [_series(rng.uniform(0.2, 0.3, 120), {"service": s, "pod": f"{s}-1"}, name="cpu") for s in ("a", "b")]
    cur = [_series(s.values.copy(), s.labels, name="cpu") for s in ref]
    cur[1].values[100:] = 2.0
    return Case(ServiceMetricsDetector(), ServiceMetricsState, ref, cur, REF, WIN)


def _drift() -> Case:
    rng = np.random.default_rng(1)
    ref = pd.DataFrame({"age": rng.normal(40, 10, 3000), "city": rng.choice(["a", "b", "c"], 3000)})
    cur = pd.DataFrame({"age": rng.normal(48, 10, 1000), "city": rng.choice(["a", "b", "d"], 1000)})
    det = DriftDetector(DriftParams(features=(FeatureSpec("age"), FeatureSpec("city", "categorical")), model="m"))
    return Case(det, ReferenceProfile, ref, cur, REF, WIN)


def _logs() -> Case:
    bs, bl = _handler_runs(W0, 300, prefix="b")
    cs, cl = _handler_runs(W0 + 3600, 180, stop_at=W0 + 3660, prefix="c")
    base = bl + _loop_runs(W0, 300, prefix="q") + _normal(W0, 300)
    cur = cl + _loop_runs(W0 + 3600, 180, cut_from=W0 + 3660, prefix="p") + _normal(W0 + 3600, 180)
    cur += [LogRecord(W0 + 3700 + i, "inference", f"ERROR failed to load batch {i}: connection reset by peer",
                      level="ERROR") for i in range(8)]
    return Case(LogDetector(), LogState, LogReference(base, bs), LogWindow(cur, cs, history_start=W0 + 3590),
                (W0, W0 + 300), (W0 + 3600, W0 + 3780))


def _traces() -> Case:
    return Case(TraceDetector(), TraceState, synthetic_traces(200, 0.0),
                TraceWindow(synthetic_traces(300, 9_900.0, pre_ms=300, seed=3), history_start=9_900.0),
                (0.0, 300.0), (10_000.0, 10_200.0))


def _anomaly() -> Case:
    ts = 1_700_000_000.0 + 300.0 * np.arange(4 * 288)
    x = 100.0 + 20 * np.sin(2 * np.pi * ts / 86400.0) + np.random.default_rng(2).normal(0, 1, len(ts))
    x[-20:-15] += 40.0
    s = Series("latency", {"service": "api"}, ts, x)
    det = OnlineAnomalyDetector(AnomalyParams(threshold=0.65, direction=Direction.UP, model="m"))
    return Case(det, AnomalyState, s, s, (ts[0], ts[3 * 288]), (ts[3 * 288 + 1], ts[-1]))


CASES: dict[str, Callable[[], Case]] = {
    "kpi": _kpi, "slo": _slo, "gpu": _gpu, "service_metrics": _service_metrics, "drift": _drift,
    "logs": _logs, "traces": _traces, "anomaly": _anomaly,
}


def _json(state: FittedState) -> dict[str, Any]:
    return json.loads(json.dumps(state.to_dict(), allow_nan=False))  # strict JSON: no NaN, no inf


@pytest.mark.parametrize("name", CASES)
def test_fitted_state_round_trips_and_scores_identically(name: str) -> None:
    case = CASES[name]()
    det = case.detector
    state = det.fit(case.reference, *case.ref)
    assert isinstance(state, case.state_type) and isinstance(state, FittedState)
    blob = _json(state)
    restored = case.state_type.from_dict(blob)
    assert _json(restored) == blob
    # Online detectors advance their state while scoring: each scoring gets its own copy.
    found = det.score(copy.deepcopy(state), case.window, *case.win)
    again = det.score(restored, case.window, *case.win)
    assert found, f"{name}: the case must produce findings for the comparison to mean something"
    assert all(isinstance(f, Finding) for f in found)
    assert [f.to_dict() for f in again] == [f.to_dict() for f in found]


@pytest.mark.parametrize("name", CASES)
def test_every_detector_has_the_same_shape(name: str) -> None:
    det = CASES[name]().detector
    assert isinstance(det, Detector)
    assert list(inspect.signature(det.fit).parameters) == ["reference", "start", "end"]
    assert list(inspect.signature(det.score).parameters) == ["state", "window", "start", "end"]
    (f,) = dataclasses.fields(det)  # the parameters, whole
    params = getattr(det, f.name)
    assert f.name == "params" and dataclasses.is_dataclass(params)
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(params, dataclasses.fields(params)[0].name, None)


@pytest.mark.parametrize("name", CASES)
def test_a_quiet_window_gives_an_empty_list(name: str) -> None:
    case = CASES[name]()
    det = case.detector
    state = det.fit(case.reference, *case.ref)
    quiet = _quiet(case)
    assert det.score(state, quiet, *case.win) == []


def _quiet(case: Case) -> Any:
    w = case.window
    if isinstance(w, Series):
        return Series(w.name, w.labels, w.timestamps[:0], w.values[:0])
    if isinstance(w, pd.DataFrame):
        return case.reference.iloc[:1000]
    if isinstance(w, LogWindow):
        return LogWindow([])
    if isinstance(w, TraceWindow):
        return TraceWindow([])
    return []


def test_a_log_state_fitted_on_nothing_round_trips() -> None:
    det = LogDetector()
    state = det.fit(LogReference([]), 0.0, 600.0)
    restored = LogState.from_dict(_json(state))
    cur = _normal(W0, 120, rng=random.Random(3)) + [LogRecord(W0 + 60, "api", "ERROR boom", level="ERROR")] * 4
    a = det.score(state, LogWindow(cur), W0, W0 + 120)
    assert a and [f.to_dict() for f in det.score(restored, LogWindow(cur), W0, W0 + 120)] == [f.to_dict() for f in a]


def test_bad_states_are_refused_with_what_was_expected() -> None:
    for cls in (LogState, TraceState, ServiceMetricsState, AnomalyState, ReferenceProfile):
        with pytest.raises(ValueError):
            cls.from_dict({"nonsense": 1})
