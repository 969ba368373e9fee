"""The per-service metric detector's level: a window is judged against the series' recent
history and, by default, against the normal period too ("both")."""
from __future__ import annotations

import numpy as np

from detectors.records import Direction, Series
from detectors.service_metrics import ServiceMetricsDetector, ServiceMetricsParams

STEP = 60.0


def _series(values: list[float], t0: float) -> Series:
    return Series("latency_p99_s", {"service": "food"}, t0 + STEP * np.arange(len(values)), np.asarray(values, float))


def _assess(level: str, normal: list[float], recent: list[float], window: list[float]):
    det = ServiceMetricsDetector(ServiceMetricsParams(level=level))
    state = det.fit([_series(normal, 0.0)], 0.0, STEP * len(normal))
    t0 = 100_000.0
    start = t0 + STEP * len(recent)
    return det.assess(state, [_series(recent + window, t0)], start, start + STEP * len(window))


# A latency quantile read from histogram buckets: in the normal period it sits at the
# 25 ms bucket more often than at 10 ms; the half hour before the alert was quiet (10 ms).
NORMAL = [0.0248] * 17 + [0.00995] * 10 + [0.0247] * 4 + [0.247]
QUIET = [0.00995] * 30


def test_a_level_the_normal_period_itself_holds_is_no_evidence() -> None:
    back = [0.02485] * 5
    assert _assess("both", NORMAL, QUIET, back).findings == []
    (f,) = _assess("recent", NORMAL, QUIET, back).findings  # the recent level alone: z 15
    assert f.evidence["z"] > 10 and f.baseline == 0.00995


def test_a_level_beyond_both_is_found_and_named_against_the_reading_that_binds() -> None:
    report = _assess("both", NORMAL, QUIET, [0.6] * 5)
    (f,) = report.findings
    # The normal period's median (25 ms) is the weaker reading: it is the one reported.
    assert f.baseline == 0.0248 and "vs baseline median 0.0248" in f.message
    assert f.evidence["z"] < _assess("recent", NORMAL, QUIET, [0.6] * 5).findings[0].evidence["z"]


def test_a_fall_below_both_levels_is_found_against_the_nearer_one() -> None:
    """Availability recorded long ago around 99.05, lately 99.9; a fall to 97 is below
    both, and is measured from the normal period's level, the nearer one."""
    normal = [99.0 + 0.05 * (i % 3) for i in range(60)]
    det = ServiceMetricsDetector(ServiceMetricsParams(level="both"))
    state = det.fit([Series("availability_pct", {"service": "food"}, STEP * np.arange(60), np.asarray(normal))],
                    0.0, 3600.0)
    cur = Series("availability_pct", {"service": "food"}, 100_000.0 + STEP * np.arange(35),
                 np.asarray([99.9] * 30 + [97.0] * 5))
    (f,) = det.assess(state, [cur], 100_000.0 + 30 * STEP, 100_000.0 + 35 * STEP).findings
    assert f.direction is Direction.DOWN and f.baseline == float(np.median(normal)) == 99.05


def test_a_level_the_recent_history_holds_is_no_evidence_either() -> None:
    """The other way round: the normal period sat at 10 ms, the last half hour at 25 ms
    (a slower release, a busier hour); 30 ms is ordinary for the recent level."""
    normal, recent, window = [0.010] * 60, [0.025] * 30, [0.030] * 5
    assert _assess("both", normal, recent, window).findings == []
    assert _assess("recent", normal, recent, window).findings == []
    (f,) = _assess("normal", normal, recent, window).findings
    assert f.evidence["z"] > 6 and f.baseline == 0.010
