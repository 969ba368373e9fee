"""A DCGM exporter restart (or a node's scrape failing) leaves a hole in the series: Prometheus
returns no points for it. Two minutes at 99 % before a 15-minute hole and two after are four
minutes of saturation seen, not a 19-minute saturation that 'began before the latency'."""
from __future__ import annotations

import numpy as np

from detectors.base import NoState
from detectors.gpu import GpuDetector, GpuParams, GpuSignal
from detectors.records import Series

T0 = 1_800_000_000.0
STEP = 60.0


def _score(ts: np.ndarray, values: np.ndarray) -> list:
    det = GpuDetector(GpuParams(GpuSignal("gpu_util_pct", 95, "%"), min_duration=300, step=STEP, model="m"))
    s = Series("gpu", {"Hostname": "n1", "gpu": "0"}, ts, values)
    return det.score(NoState(), [s], T0, float(ts[-1]))


def test_a_scrape_gap_does_not_join_two_short_saturations_into_one_long_one() -> None:
    before = T0 + STEP * np.arange(10)  # 40 % for 7 min, then 99 % for 3 points
    after = before[-1] + 15 * 60 + STEP * np.arange(3)  # 15 minutes without points, then 99 % for 3 points
    ts = np.concatenate([before, after])
    values = np.concatenate([np.r_[np.full(7, 40.0), np.full(3, 99.0)], np.full(3, 99.0)])
    assert _score(ts, values) == []


def test_saturation_lasting_through_the_window_is_still_found() -> None:
    ts = T0 + STEP * np.arange(30)
    (f,) = _score(ts, np.r_[np.full(20, 40.0), np.full(10, 99.0)])
    assert f.onset == ts[20] and f.evidence["minutes"] == 9.0


def test_a_saturation_older_than_the_window_is_told_as_at_least_the_window() -> None:
    """The window (30 min) cuts a saturation that began an hour ago: its message must not
    say it lasted 29 min, which the incident's 'began at' an hour ago contradicts."""
    ts = T0 + STEP * np.arange(30)
    (f,) = _score(ts, np.full(30, 99.0))
    assert "for at least 29 min" in f.message, f.message
    (g,) = _score(ts, np.r_[np.full(20, 40.0), np.full(10, 99.0)])
    assert "for 9 min" in g.message, g.message
