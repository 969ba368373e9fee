"""`policy.anomaly_resolution`: the anomaly detector judging bin means instead of every
queried point (detectors/anomaly/resolution.py), as the daemon runs it: overlapping
windows, one cycle a minute."""
from __future__ import annotations

import numpy as np

from benchmarks.anomaly_null import healthy_series
from detectors.anomaly import AnomalyParams, AnomalyState, OnlineAnomalyDetector
from detectors.anomaly.resolution import to_resolution
from detectors.records import Direction, Series

T0 = 1_700_000_100.0  # a multiple of 300 s


def _series(ts, xs) -> Series:
    return Series("p99_latency_seconds", {"service": "ranker"}, np.asarray(ts, float), np.asarray(xs, float))


def test_points_become_means_of_complete_bins_stamped_at_their_end():
    ts = T0 + 60.0 * np.arange(13)  # 00:00 .. 12:00, a point a minute
    xs = np.arange(13.0)
    xs[7] = np.nan  # a missing point is left out of its bin's mean, never read as zero
    out = to_resolution(_series(ts, xs), 300.0, until=float(ts[-1]))
    assert out.timestamps.tolist() == [T0 + 300.0, T0 + 600.0]  # 10:00 .. 12:00 is not complete yet
    assert out.values.tolist() == [2.0, (5 + 6 + 8 + 9) / 4]
    assert out.labels == {"service": "ranker"}
    later = to_resolution(_series(ts, xs), 300.0, until=T0 + 900.0)
    assert later.timestamps[-1] == T0 + 900.0 and later.values[-1] == 11.0  # complete once its end has passed
    one = _series([T0 + 60.0], [4.0])  # a lone point is binned like any other, never passed through raw
    assert len(to_resolution(one, 300.0, until=T0 + 60.0).values) == 0
    assert to_resolution(one, 300.0, until=T0 + 300.0).timestamps.tolist() == [T0 + 300.0]


def test_a_window_starting_inside_a_bin_does_not_give_that_bin_from_its_last_points():
    ts = T0 + 120.0 + 60.0 * np.arange(12)  # after a late cycle: the window starts at 02:00
    out = to_resolution(_series(ts, np.arange(12.0)), 300.0, until=float(ts[-1]))
    assert out.timestamps.tolist() == [T0 + 600.0]  # not 00:00-05:00 from 02:00-04:00 alone
    unaligned = T0 + 10.0 + 60.0 * np.arange(10)  # a step grid off the clock: 00:10 .. 04:10 is all of the bin
    assert to_resolution(_series(unaligned, np.ones(10)), 300.0, until=T0 + 600.0).timestamps.tolist() == [
        T0 + 300.0, T0 + 600.0]
    s = _series(ts, np.ones(12))
    assert to_resolution(s, 0.0, until=T0 + 1e6) is s  # 0: every point as it is


def _cycles(ts, xs, resolution, threshold=0.9):
    """One cycle a minute over a 30-minute window, the state carried as JSON would be."""
    det = OnlineAnomalyDetector(AnomalyParams(threshold, Direction.UP, "ranker", resolution=resolution))
    state, findings = det.new_state(), []
    first = 2 * 1440  # two days of history at the first look, then a cycle a minute
    det.score(state, _series(ts[:first], xs[:first]), float(ts[0]), float(ts[first - 1]))
    for end in range(first + 1, len(ts) + 1):
        w = slice(end - 30, end)
        state = AnomalyState.from_dict(state.to_dict())
        findings += det.score(state, _series(ts[w], xs[w]), float(ts[w][0]), float(ts[end - 1]))
    return findings, state


def test_overlapping_minute_cycles_score_each_bin_once_and_only_when_complete():
    n = 3 * 1440
    ts = T0 + 60.0 * np.arange(n)
    xs = 1.0 + 0.05 * np.random.default_rng(1).normal(size=n)
    k = n - 200
    xs[k:k + 10] += 2.0  # ten minutes at three times the level
    findings, state = _cycles(ts, xs, 300.0)
    assert state.to_dict()["detector"]["scalars"][0] == n // 5 - 1  # every complete bin once: the last is open
    (f,) = findings
    assert "(mean of 5 min)" in f.message and f.evidence["resolution_s"] == 300.0
    assert f.onset == ts[k]  # the start of the first bin it moved (its point is stamped at the bin's end)
    assert f.window_start % 300.0 == T0 % 300.0
    assert f.value > 2.0


def test_bin_means_raise_fewer_false_alarms_on_healthy_minute_series():
    """What the option is for: healthy latency and error ratios queried every minute as
    rate(...[5m]) alarm several times as often as at 5 minutes (README table)."""
    raw = binned = 0
    for seed in range(6):
        for name, ts, x, _ in healthy_series(seed, 20, step=60.0, window=300.0):
            if name not in ("log-normal", "error ratio (1 %)"):
                continue
            s = _series(ts, x)
            start, end = float(ts[0] + 5 * 86400), float(ts[-1])  # after five days of history
            for res in (0.0, 300.0):
                det = OnlineAnomalyDetector(AnomalyParams(0.9, Direction.BOTH, resolution=res))
                found = len(det.score(det.new_state(), s, start, end))
                raw, binned = (raw + found, binned) if res == 0.0 else (raw, binned + found)
    assert raw >= 10, raw  # the problem is there to solve
    assert binned * 3 <= raw, (raw, binned)
