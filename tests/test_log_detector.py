"""Log detector: templates against a normal window."""
from __future__ import annotations

import random

from detectors.logs import detect_log_anomalies, fit_log_baseline
from detectors.records import FindingKind, LogRecord

W0 = 1_000_000.0


def _normal(t0: float, seconds: int, svc: str = "inference", rng: random.Random | None = None) -> list[LogRecord]:
    rng = rng or random.Random(1)
    out = []
    for i in range(seconds):
        out.append(LogRecord(t0 + i, svc, f"INFO request id={rng.randint(1, 10**6)} served in {rng.randint(5, 90)} ms",
                             level="INFO"))
        if i % 60 == 0:
            out.append(LogRecord(t0 + i + 0.5, svc, f"WARN cache miss for key user:{rng.randint(1, 999)}", level="WARN"))
        out.append(LogRecord(t0 + i + 0.2, "gateway", f"INFO GET /predict 200 {rng.randint(5, 90)}ms", level="INFO"))
    return out


def _detect(base, cur, start, end):
    return detect_log_anomalies(base, cur, window_start=start, window_end=end)


def test_quiet_window_gives_no_findings():
    base = _normal(W0, 600)
    cur = _normal(W0 + 3600, 300, rng=random.Random(7))
    assert _detect(base, cur, W0 + 3600, W0 + 3900) == []


def test_new_error_template_is_found_for_its_service_with_samples():
    base = _normal(W0, 600)
    cur = _normal(W0 + 3600, 300, rng=random.Random(7))
    cur += [LogRecord(W0 + 3700 + i, "inference", f"ERROR failed to load batch {i}: connection reset by peer",
                      level="ERROR") for i in range(8)]
    f = [x for x in _detect(base, cur, W0 + 3600, W0 + 3900) if x.statistic == "new_error_template"]
    assert len(f) == 1
    (x,) = f
    assert x.kind is FindingKind.LOG_ANOMALY and x.service == "inference"
    assert x.value == 8 and x.baseline == 0 and x.onset == W0 + 3700
    assert "connection reset" in x.evidence["samples"][0] and 0 < x.score <= 1


def test_cuda_oom_is_a_fatal_finding_even_when_rare():
    base = _normal(W0, 600)
    cur = _normal(W0 + 3600, 300) + [LogRecord(W0 + 3650, "inference",
                                               "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB")]
    f = [x for x in _detect(base, cur, W0 + 3600, W0 + 3900) if x.statistic == "fatal_cuda_oom"]
    assert len(f) == 1 and f[0].service == "inference" and f[0].score >= 0.8


def test_error_rate_rise_is_scaled_by_window_length():
    # 10 identical errors per 600 s in the baseline; the same rate in a 60 s window is normal,
    # the same count in that short window is a 10x rise.
    base = _normal(W0, 600) + [LogRecord(W0 + 50 * i, "inference", "ERROR upstream timeout after 30s", level="ERROR")
                               for i in range(10)]
    same_rate = [LogRecord(W0 + 3600 + 30, "inference", "ERROR upstream timeout after 30s", level="ERROR")]
    rise = [LogRecord(W0 + 3600 + i * 5, "inference", "ERROR upstream timeout after 30s", level="ERROR")
            for i in range(10)]
    lb = fit_log_baseline(base, window_start=W0, window_end=W0 + 600)
    assert not [x for x in detect_log_anomalies(lb, same_rate, window_start=W0 + 3600, window_end=W0 + 3660)
                if x.statistic == "error_template_rate"]
    hits = [x for x in detect_log_anomalies(lb, rise, window_start=W0 + 3600, window_end=W0 + 3660)
            if x.statistic == "error_template_rate"]
    assert len(hits) == 1 and hits[0].value == 10 and hits[0].evidence["expected"] < 2


def test_oom_killed_without_level_is_found_and_levels_are_parsed_from_lines():
    base = _normal(W0, 300)
    cur = [LogRecord(W0 + 3600 + i, "trainer", line) for i, line in enumerate([
        "2024-01-01T00:00:00Z ERROR worker 3 exited with code 137",
        "2024-01-01T00:00:01Z ERROR worker 4 exited with code 137",
        "2024-01-01T00:00:02Z ERROR worker 5 exited with code 137",
        "container trainer terminated: reason=OOMKilled",
    ])]
    stats = {x.statistic for x in _detect(base, cur, W0 + 3600, W0 + 3700)}
    assert "fatal_oom_killed" in stats and "new_error_template" in stats
