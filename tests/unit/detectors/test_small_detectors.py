"""KPI, SLO and GPU detectors, and drift onset: numbers next to thresholds, right onsets."""
from __future__ import annotations

import numpy as np

from detectors.base import NoState
from detectors.drift_onset import estimate_onset, numeric_bins_position
from detectors.gpu import GpuDetector, GpuParams, GpuSignal
from detectors.kpi import KpiDetector, KpiParams
from detectors.records import Direction, FindingKind, Series
from detectors.runs import runs_past
from detectors.slo import SloDetector, SloParams

T0 = 1_800_000_000.0
ts = T0 + 60.0 * np.arange(60)


def series(values, labels=None, t=ts):
    return Series("x", labels or {}, np.asarray(t, float), np.asarray(values, float))


def test_runs_split_on_nan_and_report_peaks():
    v = np.array([0, 5, 6, np.nan, 7, 0, 8.0])
    runs = runs_past(np.arange(7.0), v, 4)
    assert [(r.start, r.end, r.peak) for r in runs] == [(1, 2, 6), (4, 4, 7), (6, 6, 8)]


def kpi(values_now, base_level=0.05, direction=Direction.DOWN, threshold=5.0):
    base = series(np.full(60, base_level), t=ts - 3600)
    det = KpiDetector(KpiParams(kpi="ctr", bad_direction=direction, threshold_pct=threshold, recent=600, model="m"))
    found = det.score(det.fit(base, ts[0] - 3600, ts[-1] - 3600), series(values_now), ts[0], ts[-1])
    assert len(found) <= 1
    return found[0] if found else None


def test_kpi_drop_found_with_percent_baseline_and_onset():
    v = np.full(60, 0.05)
    v[40:] = 0.044  # -12 % from minute 40
    f = kpi(v)
    assert f is not None and f.kind == FindingKind.KPI_DROP
    assert round(f.value, 1) == -12.0 and f.baseline == 0.05 and f.threshold == -5.0
    assert f.onset == ts[40]
    assert "dropped 12.0%" in f.message and "threshold 5%" in f.message


def test_kpi_rise_is_not_an_incident_when_only_drops_hurt():
    v = np.full(60, 0.05)
    v[40:] = 0.06
    assert kpi(v) is None
    assert kpi(v, direction=Direction.UP) is not None


def test_kpi_small_move_is_not_a_finding():
    assert kpi(np.full(60, 0.0485)) is None  # -3 %


def test_kpi_without_data_is_not_a_drop():
    assert kpi(np.full(60, np.nan)) is None


def _noisy_ctr(rng, minutes, per_min, drop=0.0):
    """A click rate over few impressions, as rate(...[5m]) ratios give it."""
    shown = rng.poisson(per_min, minutes)
    clicks = rng.binomial(shown, 0.05 * (1 - drop))
    return np.convolve(clicks, np.ones(5))[:minutes] / np.convolve(shown, np.ones(5))[:minutes]


def _noisy_kpi(now):
    rng = np.random.default_rng(3)
    base = series(_noisy_ctr(rng, 64, 200)[4:], t=ts - 3600)  # an hour at 200 impressions a minute
    det = KpiDetector(KpiParams(kpi="ctr", bad_direction=Direction.DOWN, threshold_pct=5.0, recent=300, model="m"))
    state = det.fit(base, ts[0] - 3600, ts[-1] - 3600)
    return state, det.score(state, series(now), ts[0], ts[-1])


def test_a_kpi_move_its_baseline_made_by_itself_is_no_drop():
    state, _ = _noisy_kpi(np.full(60, 0.05))
    assert state.wander_pct is not None and state.wander_pct > 8, state  # 5-minute medians stray that far alone
    now = np.full(60, 0.05 * (1 - state.wander_pct / 100 * 0.8))  # a move inside that wander: 5 % and more
    _, found = _noisy_kpi(now)
    assert found == [], [f.message for f in found]


def test_a_kpi_drop_beyond_its_own_wander_is_found_and_says_so():
    state, found = _noisy_kpi(np.full(60, 0.05 * 0.6))  # -40 %
    (f,) = found
    assert f"beyond its own wander of {state.wander_pct:.1f}%" in f.message, f.message
    assert f.evidence["wander_pct"] == state.wander_pct


def test_a_steady_kpi_is_judged_on_the_threshold_alone():
    det = KpiDetector(KpiParams(kpi="ctr", bad_direction=Direction.DOWN, threshold_pct=5.0, recent=600))
    state = det.fit(series(np.full(60, 0.05), t=ts - 3600), ts[0] - 3600, ts[-1] - 3600)
    assert state.wander_pct == 0.0
    assert "wander" not in kpi(np.full(60, 0.047)).message  # -6 %: the threshold decides


def test_a_kpi_state_stored_before_the_wander_loads_without_it():
    from detectors.kpi import KpiState

    assert KpiState.from_dict({"baseline": 0.05}) == KpiState(0.05, None)
    assert KpiState.from_dict(KpiState(0.05, 7.5, 3.0).to_dict()) == KpiState(0.05, 7.5, 3.0)


def _held(now, rng_seed=3, per_min=200):
    rng = np.random.default_rng(rng_seed)
    base = series(_noisy_ctr(rng, 64, per_min)[4:], t=ts - 3600)
    det = KpiDetector(KpiParams(kpi="ctr", bad_direction=Direction.DOWN, threshold_pct=5.0, recent=300, model="m"))
    state = det.fit(base, ts[0] - 3600, ts[-1] - 3600)
    found = det.score(state, series(now), ts[0], ts[-1])
    return state, found


def test_a_kpi_drop_says_whether_it_has_held_long_enough_to_be_a_regression():
    v = np.full(60, 0.05)
    v[-5:] = 0.03  # -40 % for the last 5 minutes only: a finding, not yet held
    state, (f,) = _held(v)
    assert state.noise_pct is not None and state.noise_pct > 3, state
    assert f.evidence["held_s"] == 0 and f.evidence["held_needed_s"] == 900 and "held" not in f.message
    v[-16:] = 0.03  # the last 16 minutes: three 5-minute stretches past every bar
    _, (f,) = _held(v)
    assert f.evidence["held_s"] == 900 and f.message.endswith("; held 15 min"), f.message


def test_a_kpi_drop_whose_traffic_stopped_before_it_held_says_it_cannot_hold_until_traffic_returns():
    """A drop for 6 minutes, then 0/0 (no request) for the last 8: judged on the points before,
    never held while its last stretch is NaN, and the finding said neither."""
    v = np.full(60, 0.05)
    v[-14:] = 0.03
    v[-8:] = np.nan
    _, (f,) = _held(v)
    assert f.evidence["held_s"] == 0 and f.evidence["no_traffic_s"] == 480, f.evidence
    assert "no traffic (0/0) for the last 8 min: judged on the points before it" in f.message, f.message
    v[-8:] = 0.03  # traffic back, the drop still there: nothing to say about traffic
    _, (f,) = _held(v)
    assert f.evidence["no_traffic_s"] is None and "no traffic" not in f.message, f.message


def test_a_kpi_drop_inside_its_noise_over_the_stretches_has_not_held():
    # points 10 % either side of 0.05 in a repeating order whose every 5-minute (6-point) median is 0.05:
    # no wander at all, but a noise of 1.48 x 10 % per point
    base = series(0.05 * (1 + 0.1 * np.resize([1, 1, -1, -1, 0, 0], 60)), t=ts - 3600)
    det = KpiDetector(KpiParams(kpi="ctr", bad_direction=Direction.DOWN, threshold_pct=5.0, recent=300, model="m"))
    state = det.fit(base, ts[0] - 3600, ts[-1] - 3600)
    assert state.wander_pct == 0 and round(state.noise_pct, 1) == 14.8, state
    (f,) = det.score(state, series(np.full(60, 0.05 * 0.8)), ts[0], ts[-1])  # -20 %: < 4 x 14.8 / sqrt(3)
    assert f.evidence["held_s"] == 0, f.evidence
    (f,) = det.score(state, series(np.full(60, 0.05 * 0.6)), ts[0], ts[-1])  # -40 %
    assert f.evidence["held_s"] == 900, f.evidence


def test_a_kpi_drop_far_beyond_any_noise_its_baseline_showed_has_held_at_once():
    base = series(0.05 * (1 + 0.01 * np.resize([1, 1, -1, -1, 0, 0], 60)), t=ts - 3600)  # noise 1.5 %
    det = KpiDetector(KpiParams(kpi="ctr", bad_direction=Direction.DOWN, threshold_pct=5.0, recent=300, model="m"))
    state = det.fit(base, ts[0] - 3600, ts[-1] - 3600)
    v = np.full(60, 0.05)
    v[-6:] = 0.05 * 0.85  # -15 % for 5 minutes: 10 x the noise, more than 8 x
    (f,) = det.score(state, series(v), ts[0], ts[-1])
    assert f.evidence["held_s"] == 300, f.evidence
    # what happened, not "held 5 min" (5 of the 15 minutes a drop inside 8 x its noise holds for)
    assert f.message.endswith("; held at once: a drop beyond 8x its noise (1.5%)"), f.message
    v[-6:] = 0.05 * 0.9  # -10 %: under 8 x the noise, and one stretch only
    (f,) = det.score(state, series(v), ts[0], ts[-1])
    assert f.evidence["held_s"] == 0, f.evidence


def test_a_kpi_drop_at_a_15_minute_interval_is_held_over_three_stretches_of_the_window():
    """recent is three cycles (45 min at a 15-minute interval), longer than the 30-minute window:
    one stretch reaching back before the window had to be 4 x the noise away, a drop of
    20 % at 1,000 impressions a minute was never rolled back (2 of 50 in two hours)."""
    base = series(0.05 * (1 + 0.1 * np.resize([1, 1, -1, -1, 0, 0], 60)), t=ts - 3600)  # noise 14.8 %
    det = KpiDetector(KpiParams(kpi="ctr", bad_direction=Direction.DOWN, threshold_pct=5.0, recent=2700, model="m"))
    state = det.fit(base, ts[0] - 3600, ts[-1] - 3600)
    now = series(np.full(60, 0.05 * 0.6))  # -40 % for the hour: > 4 x 14.8 / sqrt(3), < 4 x 14.8
    (f,) = det.score(state, now, ts[-1] - 1800, ts[-1])
    assert f.evidence["held_s"] == 1800 and f.evidence["held_needed_s"] == 1800, f.evidence
    v = np.full(60, 0.05)
    v[-20:] = 0.05 * 0.6  # the last 20 minutes only: not yet three 10-minute stretches
    (f,) = det.score(state, series(v), ts[-1] - 1800, ts[-1])
    assert f.evidence["held_s"] == 0 and f.evidence["held_needed_s"] == 1800, f.evidence


def test_a_kpi_drop_after_a_baseline_of_a_few_points_has_not_held_at_once():
    """Dawn after an idle night: three real points in the baseline hour, two of them equal, gave
    a noise of 0, and any drop past the threshold was held at once: critical, rolled back."""
    b = np.full(60, np.nan)
    b[[10, 30, 50]] = [0.05, 0.05, 0.06]
    det = KpiDetector(KpiParams(kpi="ctr", bad_direction=Direction.DOWN, threshold_pct=5.0, recent=300, model="m"))
    state = det.fit(series(b, t=ts - 3600), ts[0] - 3600, ts[-1] - 3600)
    v = np.full(60, 0.05)
    v[-6:] = 0.0375  # -25 % for 5 minutes: past the threshold and the wander (20 %: each point its own stretch)
    (f,) = det.score(state, series(v), ts[0], ts[-1])
    assert f.evidence["held_s"] == 0 and state.noise_pct is None, (f.evidence, state)


def test_a_kpi_drop_after_a_baseline_mostly_on_one_value_is_not_held_at_once_within_8_times_its_spread():
    """A quantised KPI: two points in three exactly 0.05, the third 0.051. The robust spread of that
    is 0 and read as "no noise", so a -5.2 % stretch (under 3 times what the baseline showed)
    was held at once: critical and rolled back, on one cycle."""
    b = np.full(60, 0.05)
    b[::3] = 0.051
    det = KpiDetector(KpiParams(kpi="ctr", bad_direction=Direction.DOWN, threshold_pct=5.0, recent=300, model="m"))
    state = det.fit(series(b, t=ts - 3600), ts[0] - 3600, ts[-1] - 3600)
    v = np.full(60, 0.05)
    v[-6:] = 0.0474
    (f,) = det.score(state, series(v), ts[0], ts[-1])
    assert f.evidence["held_s"] == 0 and state.noise_pct > 0, (f.evidence, state)
    v[-16:] = 0.0474  # held over three stretches: well beyond that spread
    (f,) = det.score(state, series(v), ts[0], ts[-1])
    assert f.evidence["held_s"] == 900, f.evidence
    flat = det.fit(series(np.full(60, 0.05), t=ts - 3600), ts[0] - 3600, ts[-1] - 3600)
    assert flat.noise_pct == 0  # a baseline that never moved: any drop past the bars is beyond its noise


def slo(values):
    found = SloDetector(SloParams(slo="p99", threshold=0.5, above=True, step=60, unit="s", model="m")).score(
        NoState(), series(values), ts[0], ts[-1])
    assert len(found) <= 1
    return found[0] if found else None


def test_slo_breach_is_the_trailing_run():
    v = np.full(60, 0.3)
    v[50:] = 0.9
    f = slo(v)
    assert f.value == 0.9 and f.threshold == 0.5 and f.onset == ts[50]
    assert "0.9s > 0.5s" in f.message


def test_slo_breach_that_ended_is_not_current():
    v = np.full(60, 0.3)
    v[10:20] = 0.9
    assert slo(v) is None


def gpu(values, min_duration=300):
    det = GpuDetector(GpuParams(GpuSignal("gpu_util_pct", 95, "%"), min_duration=min_duration, model="m"))
    return det.score(NoState(), [series(values, {"Hostname": "n1", "gpu": "0", "pod": "p"})], ts[0], ts[-1])


def test_gpu_saturation_needs_min_duration():
    v = np.full(60, 40.0)
    v[57:] = 99  # 3 minutes
    assert gpu(v) == []
    v[50:] = 99  # 10 minutes
    (f,) = gpu(v)
    assert f.entity == "n1/gpu 0/p" and f.onset == ts[50] and f.value == 99 and f.threshold == 95


def test_drift_onset_finds_the_change_point():
    rng = np.random.default_rng(0)
    ref = np.sort(rng.normal(0, 1, 5000))
    edges = np.quantile(ref, np.linspace(0.1, 0.9, 9))
    counts = np.histogram(ref, np.concatenate(([-np.inf], edges, [np.inf])))[0]
    t = T0 + np.arange(600.0) * 3
    x = rng.normal(0, 1, 600)
    x[400:] += 2.0
    u, s = numeric_bins_position(x, edges, counts)
    onset = estimate_onset(t, [u, s])
    assert abs(onset - t[400]) <= 30 * 3


def test_drift_onset_is_none_without_a_change():
    rng = np.random.default_rng(1)
    t = T0 + np.arange(600.0)
    assert estimate_onset(t, [rng.normal(0, 1, 600)]) is None


def test_a_kpi_below_zero_dates_its_drop_from_when_it_dropped():
    # A margin KPI at -10 falls to -12 from minute 40: its onset (which picks the suspect
    # deploys) is minute 40, not the window's start, where -10 sat above the limit -10.5.
    v = np.full(60, -10.0)
    v[40:] = -12.0
    f = kpi(v, base_level=-10.0)
    assert f is not None and round(f.value, 1) == -20.0
    assert f.onset == ts[40], (f.onset - ts[0]) / 60
    up = np.full(60, -10.0)
    up[45:] = -8.0  # a cost at -10 rising 20 % the bad way from minute 45
    g = kpi(up, base_level=-10.0, direction=Direction.UP)
    assert g is not None and g.onset == ts[45], (g.onset - ts[0]) / 60
