"""A ratio told its volume: each point's band scaled by sqrt(usual volume / its volume).

The series are the benchmarks' own (`benchmarks.anomaly_episodes`, `benchmarks.anomaly_null`):
a 1 % error ratio over 10 to 70 requests a minute, queried every 60 s as `rate[5m]` and
scored as 5-minute means, as the daemon does by default."""
from __future__ import annotations

import numpy as np

from benchmarks.anomaly_episodes import episode_series
from benchmarks.anomaly_null import DAEMON_THRESHOLD, Shape, binned, healthy_series
from detectors.anomaly import AnomalyParams, OnlineAnomalyDetector
from detectors.anomaly.resolution import at_timestamps
from detectors.anomaly.state import N_VOLUME, VOLUME
from detectors.records import Series

DET = OnlineAnomalyDetector()
MEANS = 300.0


def _burst(seed: int) -> tuple[Shape, float]:
    return episode_series(100 + seed, "error ratio", 0.03, 15)  # +3 points for 15 minutes


def _caught(shape: Shape, start: float, use_volume: bool) -> bool:
    t, x, volume = binned(shape, MEANS)
    s = DET.score_points(DET.new_state(), t, x, volume if use_volume else None)
    return bool(np.any((s >= DAEMON_THRESHOLD) & (t >= start) & (t <= start + 1800.0)))


def test_a_burst_by_day_stands_out_once_the_night_noise_is_put_down_to_few_requests():
    without = sum(_caught(*_burst(seed), False) for seed in range(30))
    told = sum(_caught(*_burst(seed), True) for seed in range(30))
    assert told >= 2 * without and told >= 8, (without, told)


def test_told_the_volume_a_healthy_ratio_does_not_page_more():
    alarms = {False: 0, True: 0}
    for seed in range(6):
        shape = next(s for s in healthy_series(seed, 20, step=60.0, window=300.0) if s.volume is not None)
        t, x, volume = binned(shape, MEANS)
        after = t >= t[0] + 5 * 86400.0
        for use_volume in alarms:
            s = DET.score_points(DET.new_state(), t, x, volume if use_volume else None)
            alarms[use_volume] += int(np.sum(s[after] >= DAEMON_THRESHOLD))
    assert alarms[True] <= alarms[False], alarms


def test_a_constant_or_unknown_volume_changes_nothing():
    shape, _ = episode_series(7, "error ratio", 0.03, 15)
    t, x, volume = binned(shape, MEANS)
    plain = DET.score_points(DET.new_state(), t, x)
    assert np.array_equal(plain, DET.score_points(DET.new_state(), t, x, np.full(len(x), 250.0)))
    assert np.array_equal(plain, DET.score_points(DET.new_state(), t, x, np.full(len(x), np.nan)))
    assert np.array_equal(plain, DET.score_points(DET.new_state(), t, x, np.zeros(len(x))))
    assert not np.array_equal(plain, DET.score_points(DET.new_state(), t, x, volume))


def test_the_contract_path_bins_the_volume_with_the_series_and_matches_it_by_time():
    told_only = (b for b in map(_burst, range(30)) if _caught(*b, True) and not _caught(*b, False))
    shape, start = next(told_only)
    det = OnlineAnomalyDetector(AnomalyParams(resolution=MEANS))
    series = Series("errors", {}, shape.timestamps, shape.values)
    volume = Series("errors volume", {}, shape.timestamps, shape.volume)
    end = start + 1800.0
    assert not [f for f in det.score(det.new_state(), series.between(0, end), start, end) if f.onset >= start - MEANS]
    found = det.score_volume(det.new_state(), series.between(0, end), volume.between(0, end), start, end)
    assert [f for f in found if start - MEANS <= f.onset <= end]


def test_a_volume_point_missing_at_a_timestamp_is_unknown_not_zero():
    vol = Series("v", {}, np.array([60.0, 120.0, 240.0]), np.array([5.0, 6.0, 8.0]))
    got = at_timestamps(vol, np.array([60.0, 180.0, 240.0, 300.0]))
    assert got[0] == 5.0 and got[2] == 8.0 and np.isnan(got[1]) and np.isnan(got[3])
    assert np.isnan(at_timestamps(Series("v", {}, np.empty(0), np.empty(0)), np.array([1.0]))).all()


def test_the_noise_is_learnt_at_the_usual_volume_and_each_band_scaled_to_its_own():
    """Volumes alternating 10 and 160 requests (usual: their mean, 85): the band of a busy
    point is 4x narrower than a quiet one's, and each is the binomial noise of its own volume."""
    rng = np.random.default_rng(11)
    n = 3000
    volume = np.where(np.arange(n) % 2 == 0, 10.0, 160.0)
    ratio = rng.binomial(volume.astype(int), 0.2) / volume
    ts = 1_700_000_000.0 + 300.0 * np.arange(n)
    detail = DET.score_points_detail(DET.new_state(), ts, ratio, volume)
    late = np.arange(n) >= n // 2
    quiet, busy = np.median(detail.scale[late & (volume == 10.0)]), np.median(detail.scale[late & (volume == 160.0)])
    assert abs(quiet / busy - 4.0) < 0.2
    truth = np.sqrt(0.2 * 0.8 / 160.0)  # the sd of a ratio over 160 requests
    assert 0.8 * truth < busy < 1.25 * truth, (busy, truth)
    plain = np.median(DET.score_points_detail(DET.new_state(), ts, ratio).scale[late])
    assert plain > 2 * truth  # unscaled, one band for both: the quiet points' noise dominates it


def test_an_infinite_volume_is_unknown_and_does_not_switch_the_scaling_off():
    shape, _ = episode_series(7, "error ratio", 0.03, 15)
    t, x, volume = binned(shape, MEANS)
    broken, unknown = volume.copy(), volume.copy()
    broken[[0, 500]] = np.inf
    unknown[[0, 500]] = np.nan
    st = DET.new_state()
    assert np.array_equal(DET.score_points(st, t, x, broken), DET.score_points(DET.new_state(), t, x, unknown))
    assert np.isfinite(st.series.scalars[VOLUME]) and st.series.scalars[VOLUME] > 0


def test_a_volume_first_told_late_is_learnt_as_fast_as_one_told_from_the_start():
    """A series scored for a while without its volume (a state from before, a volume query
    added later, or one that failed at first sight): the usual volume is the running mean
    of the volumes seen, not the first one (a night's 10 requests would make every busy
    point's band 2.9x too narrow for days)."""
    rng = np.random.default_rng(12)
    n = 3000
    volume = np.where((np.arange(n) // 144) % 2 == 0, 10.0, 160.0)  # 12 h quiet, 12 h busy
    ratio = rng.binomial(volume.astype(int), 0.2) / volume
    ts = 1_700_000_000.0 + 300.0 * np.arange(n)
    late, told_late = DET.new_state(), volume.copy()
    told_late[:1500] = np.nan
    a = DET.score_points_detail(late, ts, ratio, told_late)
    start = DET.new_state()
    b = DET.score_points_detail(start, ts, ratio, volume)
    assert start.series.scalars[N_VOLUME] == n and late.series.scalars[N_VOLUME] == n - 1500
    assert abs(late.series.scalars[VOLUME] / 85.0 - 1.0) < 0.1, late.series.scalars[VOLUME]
    busy = (np.arange(n) >= 2500) & (volume == 160.0)
    assert abs(np.median(a.scale[busy]) / np.median(b.scale[busy]) - 1.0) < 0.2
