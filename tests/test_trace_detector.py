"""Trace detector on synthetic call trees: self time, edge time, errors, calls."""
from __future__ import annotations

import random

from detectors.records import Span
from detectors.traces import detect_trace_anomalies

MS = 1_000_000


def _traces(n: int, t0_s: float, *, pre_ms: float = 50, edge_ms: float = 2, error: bool = False,
            call_cache: bool = True, seed: int = 0) -> list[Span]:
    """gateway -> api (client span) -> preprocess service; api also calls cache."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        tid = f"{seed:08x}{i:024x}"
        t = int((t0_s + i) * 1e9)
        pre = int(rng.uniform(0.9, 1.1) * pre_ms * MS)
        edge = int(rng.uniform(0.9, 1.1) * edge_ms * MS)
        own = int(rng.uniform(4, 6) * MS)
        cache = int(rng.uniform(1, 2) * MS) if call_cache else 0
        root_end = t + own + edge + pre + cache + 2 * MS
        out += [
            Span(tid, f"{i:012x}0001", None, "api", "POST /predict", t, root_end, error=error),
            Span(tid, f"{i:012x}0002", f"{i:012x}0001", "api", "HTTP POST", t + own, t + own + edge + pre,
                 error=error),
            Span(tid, f"{i:012x}0003", f"{i:012x}0002", "preprocess", "transform", t + own + edge // 2,
                 t + own + edge // 2 + pre, error=error),
        ]
        if call_cache:
            c0 = t + own + edge + pre
            out.append(Span(tid, f"{i:012x}0004", f"{i:012x}0001", "api", "cache.get", c0, c0 + cache))
    return out


BASE = _traces(200, 0.0)


def _run(cur, start=10_000.0, end=10_300.0):
    return detect_trace_anomalies(BASE, cur, window_start=start, window_end=end)


def test_normal_traffic_gives_no_findings_and_a_graph():
    findings, graph = _run(_traces(200, 10_000.0, seed=3))
    assert findings == []
    assert ("api", "preprocess") in graph.edges and graph.callees("api") == {"preprocess"}
    e = graph.edges[("api", "preprocess")]
    assert 1.0 < e.edge_ms_baseline < 3.0 and 45 < e.callee_ms_current < 55


def test_slow_callee_is_blamed_on_self_time_not_the_waiting_caller():
    findings, _ = _run(_traces(200, 10_000.0, pre_ms=300, seed=3))
    self_time = [f for f in findings if f.statistic == "self_time_ms_p50"]
    assert {f.service for f in self_time} == {"preprocess"}
    (f,) = self_time
    assert 270 < f.value < 330 and 45 < f.baseline < 55 and f.evidence["trace_ids"]


def test_network_delay_shows_on_the_edge():
    findings, graph = _run(_traces(200, 10_000.0, edge_ms=500, seed=3))
    edge = [f for f in findings if f.statistic == "edge_time_ms_p50"]
    assert len(edge) == 1 and edge[0].evidence["caller"] == "api" and edge[0].evidence["callee"] == "preprocess"
    assert not [f for f in findings if f.statistic == "self_time_ms_p50"]
    assert graph.edges[("api", "preprocess")].edge_ms_current > 400


def test_errors_are_traced_to_the_deepest_failing_span():
    findings, _ = _run(_traces(200, 10_000.0, error=True, seed=3))
    origin = [f for f in findings if f.statistic == "error_origin_rate"]
    assert [f.service for f in origin] == ["preprocess"]


def test_vanished_calls_point_at_the_parent():
    findings, _ = _run(_traces(200, 10_000.0, call_cache=False, seed=3))
    gone = [f for f in findings if f.statistic == "calls_vanished"]
    assert len(gone) == 1 and gone[0].service == "api" and gone[0].value == 0
    assert gone[0].evidence["child_operation"] == "cache.get"


def test_spans_outside_the_window_are_ignored():
    findings, _ = _run(_traces(200, 20_000.0, pre_ms=300, seed=3))
    assert findings == []


def test_a_slowdown_already_there_before_the_window_counts_less():
    slow_since_before = _traces(300, 9_900.0, pre_ms=300, seed=3)
    fresh, _ = detect_trace_anomalies(BASE, slow_since_before, window_start=10_000.0, window_end=10_200.0)
    hist, _ = detect_trace_anomalies(BASE, slow_since_before, window_start=10_000.0, window_end=10_200.0,
                                     history_start=9_900.0)
    (a,) = [f for f in fresh if f.statistic == "self_time_ms_p50"]
    (b,) = [f for f in hist if f.statistic == "self_time_ms_p50"]
    assert a.service == b.service == "preprocess"
    # The recent history joins the reference, so the same slowdown is less surprising.
    assert b.score < a.score
