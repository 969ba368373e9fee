"""No modality is required: empty logs, empty traces, a normal period without traces,
a single normal sample. Each detector answers (possibly with nothing), never crashes."""
from __future__ import annotations

import numpy as np

from detectors.logs import LogDetector, LogReference, LogWindow
from detectors.records import Direction, LogRecord, Series
from detectors.service_metrics import ServiceMetricsDetector, ServiceMetricsParams
from detectors.traces import TraceDetector, TraceWindow
from tests.synthetic_traces import synthetic_traces


def _lines(t0: float, n: int) -> list[LogRecord]:
    return [LogRecord(t0 + i, "api", f"INFO GET /items/{i} 200", level="INFO") for i in range(n)]


def test_trace_detector_with_a_normal_period_without_traces_still_reads_the_graph():
    det = TraceDetector()
    state = det.fit([], 0.0, 300.0)  # the normal period had no traces at all
    report = det.assess(state, TraceWindow(synthetic_traces(50, 1000.0)), 1000.0, 1300.0)
    assert ("api", "preprocess") in report.graph.edges
    assert all(0.0 <= f.score <= 1.0 for f in report.findings)


def test_trace_detector_with_no_traces_in_the_window_finds_nothing_but_keeps_the_known_graph():
    det = TraceDetector()
    report = det.assess(det.fit(synthetic_traces(50, 0.0), 0.0, 300.0), TraceWindow([]), 1000.0, 1300.0)
    assert report.findings == []
    edge = report.graph.edges[("api", "preprocess")]  # the graph the normal period showed
    assert edge.calls_baseline == 50 and edge.calls_current == 0


def test_log_detector_with_no_lines_on_either_side():
    det = LogDetector()
    state = det.fit(LogReference([], []), 0.0, 1.0)
    assert det.score(state, LogWindow([], []), 10.0, 20.0) == []


def test_log_detector_with_lines_but_no_normal_lines_or_spans():
    det = LogDetector()
    state = det.fit(LogReference([], []), 0.0, 1.0)
    findings = det.score(state, LogWindow(_lines(100.0, 30), []), 100.0, 130.0)
    assert all(0.0 <= f.score <= 1.0 for f in findings)


def _series(name: str, values: list[float], t0: float = 0.0, step: float = 60.0, service: str = "db") -> Series:
    v = np.asarray(values, dtype=float)
    return Series(name, {"service": service, "pod": f"{service}-1"}, t0 + step * np.arange(len(v)), v)


def test_a_single_normal_sample_gives_a_verdict_with_less_confidence():
    det = ServiceMetricsDetector()
    one = det.fit([_series("latency_p99_s", [0.1])], 0.0, 60.0)
    many = det.fit([_series("latency_p99_s", list(np.full(50, 0.1)))], 0.0, 3000.0)
    cur = _series("latency_p99_s", [0.1, 0.9, 0.95, 0.9], t0=6000.0)
    (f1,) = det.score(one, [cur], 6000.0, 6200.0)
    (f50,) = det.score(many, [cur], 6000.0, 6200.0)
    assert f1.direction is Direction.UP and f1.score < f50.score
    assert f1.evidence["baseline_samples"] >= 1


def test_a_short_normal_period_falls_back_to_the_series_own_history_and_says_so():
    det = ServiceMetricsDetector(ServiceMetricsParams(min_normal=10))
    state = det.fit([], 0.0, 1.0)  # no normal samples at all
    hist = [0.1, 0.11, 0.09, 0.1, 0.1, 0.12, 0.1, 0.09]
    cur = _series("latency_p99_s", hist + [0.9, 0.95, 0.9])
    report = det.assess(state, [cur], 60.0 * len(hist), 60.0 * (len(hist) + 3))
    (f,) = report.findings
    assert f.evidence["baseline_samples"] == len(hist)
    assert any("recent history" in x for x in report.lacking)


def test_no_baseline_at_all_is_reported_not_guessed():
    det = ServiceMetricsDetector()
    report = det.assess(det.fit([], 0.0, 1.0), [_series("latency_p99_s", [0.9, 0.95])], 0.0, 60.0)
    assert report.findings == [] and any("no baseline" in x for x in report.lacking)


def test_the_bad_direction_comes_from_what_the_metric_means():
    # The request count is another service's: beside the availability of its own service
    # it would turn that into failed requests (tests/unit/detectors/test_failed_requests.py).
    normal = [_series(n, list(np.full(50, v)), service=svc) for n, v, svc in
              (("availability_pct", 100.0, "db"), ("latency_p99_s", 0.2, "db"), ("requests_total", 100.0, "api"))]
    det = ServiceMetricsDetector()
    state = det.fit(normal, 0.0, 3000.0)
    cur = [_series("availability_pct", [60.0, 55.0, 60.0], t0=6000.0),  # down: bad
           _series("latency_p99_s", [0.01, 0.01, 0.01], t0=6000.0),  # faster: fine
           _series("requests_total", [10.0, 12.0, 10.0], t0=6000.0, service="api")]  # unknown: less weight
    found = {f.evidence["metric"]: f for f in det.score(state, cur, 6000.0, 6200.0)}
    assert set(found) == {"availability_pct", "requests_total"}
    assert found["availability_pct"].direction is Direction.DOWN
    assert found["requests_total"].score < found["availability_pct"].score
