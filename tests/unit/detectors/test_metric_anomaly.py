"""Online metric anomaly detector: behaviour on series shaped like production metrics."""
from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks.anomaly_null import DAEMON_THRESHOLD, NAB_THRESHOLD, healthy_series
from detectors.anomaly import STATE_VERSION, AnomalyParams, AnomalyState, OnlineAnomalyDetector, SeriesState
from detectors.anomaly.state import N_VOLUME, SKIPPED, VOLUME
from detectors.anomaly.state import STEP as STEP_SLOT
from detectors.records import Direction, FindingKind, Series

STEP = 300.0  # 5-minute samples
DAY_POINTS = int(86400 / STEP)
THRESHOLD = 0.65  # below the NAB-optimised standard-profile threshold
DET = OnlineAnomalyDetector()


def _daily(days: float, seed: int = 0, noise: float = 1.0, amp: float = 20.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = int(days * DAY_POINTS)
    ts = 1_700_000_000.0 + STEP * np.arange(n)
    x = 100.0 + amp * np.sin(2 * np.pi * ts / 86400.0) + rng.normal(0, noise, n)
    return ts, x


def _score(ts, x, direction=Direction.BOTH):
    return OnlineAnomalyDetector(AnomalyParams(direction=direction)).score_points(DET.new_state(), ts, x)


def test_scores_are_in_unit_interval_and_quiet_on_normal_seasonal_data():
    ts, x = _daily(10)
    s = _score(ts, x)
    assert s.shape == x.shape and s.min() >= 0.0 and s.max() <= 1.0
    assert not np.any(np.signbit(s))  # no -0.0 in what users print or export
    # after the first two days, normal daily peaks and troughs are not anomalies
    assert np.mean(s[2 * DAY_POINTS:] >= THRESHOLD) < 0.002


def test_spike_is_flagged_at_once():
    ts, x = _daily(8)
    k = 6 * DAY_POINTS + 40
    x[k] += 15.0  # inside the normal range of the day, far outside this time of day's band
    s = _score(ts, x)
    assert s[k] >= THRESHOLD
    assert s[k] > 2 * np.max(s[2 * DAY_POINTS:k])


def test_dip_at_peak_time_needs_the_seasonal_model():
    ts, x = _daily(8)
    peak = 6 * DAY_POINTS + DAY_POINTS // 4  # sin maximum
    x[peak:peak + 6] -= 20.0  # back to the daily mean: a normal value, at the wrong time
    s = _score(ts, x)
    assert s[peak:peak + 3].max() >= THRESHOLD


def test_level_shift_and_flat_line_that_moves():
    rng = np.random.default_rng(1)
    ts = STEP * np.arange(2000)
    x = 50 + rng.normal(0, 1, 2000)
    x[1500:] += 8.0
    s = _score(ts, x)
    assert s[1500:1503].max() >= THRESHOLD

    flat = np.full(2000, 7.0)
    flat[1800] = 7.5
    s = _score(ts, flat)
    assert s[:1800].max() == 0.0 and s[1800] >= THRESHOLD


def test_value_where_the_series_never_sits_is_flagged_at_its_first_point():
    # a daily two-level metric (a batch job on from midnight to noon): it crosses the middle
    # in one step, never lingers there; one morning it sits half-way (a job at half capacity)
    rng = np.random.default_rng(8)
    ts = 1_700_000_000.0 + STEP * np.arange(8 * DAY_POINTS)
    x = np.where((ts % 86400.0) < 43200.0, 10.0, 0.0) + rng.normal(0, 0.5, len(ts))
    k = 7 * DAY_POINTS + DAY_POINTS // 4
    x[k:k + 12] = 5.0 + rng.normal(0, 0.5, 12)
    s = _score(ts, x)
    # the daily switches are normal (a 3-sigma noise blip may score up to the rarity
    # check's 0.825 cap: weak evidence, below the benchmark's threshold and the daemon's 0.9)
    assert np.mean(s[2 * DAY_POINTS:k] >= NAB_THRESHOLD) == 0.0
    # the forecast alone needs a few points to be sure; the value's rarity flags the first one,
    # as weaker evidence than a value beyond everything seen (which scores 1)
    assert THRESHOLD <= s[k] < 1.0


def test_direction_down_ignores_rises_and_catches_drops():
    rng = np.random.default_rng(2)
    ts = STEP * np.arange(1500)
    x = 0.05 + rng.normal(0, 0.001, 1500)  # a CTR
    x[1000] += 0.02
    x[1300] -= 0.02
    s = _score(ts, x, Direction.DOWN)
    assert s[1000] < 0.1
    assert s[1300] >= THRESHOLD
    assert _score(ts, x, Direction.UP)[1300] < 0.1


def test_missing_points_score_zero_and_do_not_poison_the_state():
    ts, x = _daily(4, seed=3)
    holes = x.copy()
    holes[500:520] = np.nan
    keep = ~np.isnan(holes)
    s_holes = _score(ts, holes)
    assert np.all(s_holes[~keep] == 0.0)
    np.testing.assert_allclose(s_holes[keep], _score(ts[keep], x[keep]))


def test_streaming_in_chunks_with_a_restart_equals_one_pass():
    ts, x = _daily(5, seed=4)
    x[1000] += 30
    whole = _score(ts, x)
    st = DET.new_state()
    parts = []
    for a, b in [(0, 7), (7, 700), (700, 701), (701, len(x))]:
        parts.append(DET.score_points(st, ts[a:b], x[a:b]))
        st = AnomalyState.from_dict(json.loads(json.dumps(st.to_dict())))  # daemon restart
    np.testing.assert_array_equal(np.concatenate(parts), whole)
    assert len(json.dumps(st.to_dict())) < 10_000  # small


def test_points_already_seen_are_not_scored_again():
    ts, x = _daily(2, seed=5)
    st = DET.new_state()
    DET.score_points(st, ts, x)
    before = st.to_dict()
    again = DET.score_points(st, ts[-10:], x[-10:] + 1000)
    assert np.all(again == 0.0) and st.to_dict() == before


def test_bad_state_is_refused_with_the_field_named():
    with pytest.raises(ValueError, match="scalars"):
        SeriesState.from_dict({"version": STATE_VERSION, "scalars": [1.0], "daily": [], "weekly": []})
    with pytest.raises(ValueError, match="version"):  # a state from an older detector layout
        SeriesState.from_dict({**DET.new_state().series.to_dict(), "version": 2})
    with pytest.raises(ValueError, match="version"):
        SeriesState.from_dict({"scalars": []})


@pytest.mark.parametrize("version", [3, 4, 5, 6])
def test_state_of_a_previous_version_is_carried_over_without_a_cold_start(version: int):
    ts, x = _daily(3, seed=6)
    st = DET.new_state()
    DET.score_points(st, ts, x, np.full(len(x), 100.0))
    now = st.series.to_dict()
    old = now | {"version": 6, "scalars": now["scalars"][:22]}  # version 6: no usual step, no time skipped
    if version <= 5:  # nor a count of volumes
        old = old | {"version": 5, "scalars": now["scalars"][:21]}
    if version <= 4:  # nor a usual volume
        old = old | {"version": 4, "scalars": now["scalars"][:20]}
    if version == 3:  # nor an excursion memory
        old = {k: v for k, v in old.items() if k != "excursions"} | {"version": 3}
    restored = SeriesState.from_dict(json.loads(json.dumps(old)))
    assert restored.points_seen == len(x) and restored.last_timestamp == ts[-1]
    assert restored.scalars[STEP_SLOT] == 0.0 and restored.scalars[SKIPPED] == 0.0  # learnt from the next points
    if version >= 5:  # its usual volume kept, moving at the pace it had
        assert restored.scalars[VOLUME] == 100.0 and restored.scalars[N_VOLUME] == len(x)
    else:
        assert restored.scalars[VOLUME] == 0.0 and restored.scalars[N_VOLUME] == 0.0  # none known yet
    if version == 3:
        assert np.all(restored.excursions == 0.0)  # the new memory starts empty
    else:
        assert restored.excursions.tolist() == now["excursions"]
    nxt = ts[-1] + STEP * np.arange(1, 4)
    assert np.all(DET.score_points(AnomalyState(restored), nxt, np.full(3, x[-1])) < THRESHOLD)  # no cold start


def _spiky(seed: int = 7) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A flat, noisy series (level 10, sd 0.2) with a +5 spike about every 31 hours."""
    rng = np.random.default_rng(seed)
    n = 14 * DAY_POINTS
    ts = 1_700_000_000.0 + STEP * np.arange(n)
    x = 10.0 + rng.normal(0, 0.2, n)
    spikes = np.arange(400, n, 374) + rng.integers(-40, 40, len(range(400, n, 374)))
    x[spikes] += 5.0 + rng.normal(0, 0.3, len(spikes))
    return ts, x, spikes


def test_spikes_the_series_keeps_producing_stop_paging_but_a_new_extreme_still_does():
    ts, x, spikes = _spiky()
    s = _score(ts, x)
    assert s[spikes[0]] >= DAEMON_THRESHOLD  # the first of its kind is news
    assert np.all(s[spikes[3:]] < DAEMON_THRESHOLD), s[spikes]  # after a few precedents it is routine
    dip = x.copy()
    j = spikes[-1] + 150
    dip[j] -= 5.0  # below anything seen: never routine
    assert _score(ts, dip)[j] >= DAEMON_THRESHOLD


def _series(ts, x, labels=None):
    return Series("http_latency_p99_seconds", labels or {"service": "ranker"}, ts, x)


def test_daemon_cycles_on_overlapping_windows_report_one_finding_with_evidence():
    ts, x = _daily(8, seed=6)
    k = 7 * DAY_POINTS
    x[k:k + 5] += 25.0
    state = None
    findings = []
    for end in range(DAY_POINTS, len(x) + 1, 6):  # a cycle every 30 min, 1-hour lookback
        window = slice(max(0, end - 12), end)
        det = OnlineAnomalyDetector(AnomalyParams(THRESHOLD, Direction.UP, "ranker-v3"))
        state = AnomalyState.from_dict(state) if end > DAY_POINTS else det.new_state()
        findings += det.score(state, _series(ts[window], x[window]), float(ts[window][0]), float(ts[end - 1]))
        state = json.loads(json.dumps(state.to_dict()))
    assert findings, "the jump was missed"
    first = findings[0]
    assert first.kind is FindingKind.METRIC_ANOMALY
    assert first.entity == 'http_latency_p99_seconds{service="ranker"}'
    assert first.onset == ts[k] and first.direction is Direction.UP
    assert first.value == pytest.approx(x[first.evidence["at"] == ts][0])
    lo, hi = first.evidence["expected_band"]
    assert lo < first.baseline < hi < first.value and first.threshold == hi
    assert first.model == "ranker-v3" and first.service == "ranker"
    assert first.evidence["magnitude"] == pytest.approx(first.value - first.baseline)
    assert all(abs(f.onset - ts[k]) < 86400 for f in findings)  # no false alarms elsewhere


def test_daemon_direction_down_stays_silent_on_a_rise():
    ts, x = _daily(3, seed=7)
    x[-5:] += 40
    det = OnlineAnomalyDetector(AnomalyParams(THRESHOLD, Direction.DOWN, None))
    state = det.new_state()
    f = det.score(state, _series(ts, x), float(ts[0]), float(ts[-1]))
    assert f == [] and state.to_dict()["detector"]["scalars"][0] == len(x)


def test_a_healthy_daily_seasonal_series_never_reaches_the_benchmark_threshold():
    for seed in range(10):
        (ts, x), = [(ts, x) for name, ts, x, _ in healthy_series(seed, 10) if name == "daily sine"]
        s = _score(ts, x)[2 * DAY_POINTS:]  # after two days of warm-up
        assert s.max() < NAB_THRESHOLD, (seed, float(s.max()))


def _weekly(weeks: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weekdays around 100, weekends around 60, a daily swing of +-10, noise sd 2."""
    rng = np.random.default_rng(seed)
    ts = 1_700_000_000.0 + STEP * np.arange(weeks * 7 * DAY_POINTS)
    dow = ((ts // 86400.0) + 4) % 7  # 1970-01-01 was a Thursday
    x = np.where(dow >= 5, 60.0, 100.0) + 10 * np.sin(2 * np.pi * ts / 86400.0) + rng.normal(0, 2, len(ts))
    return ts, x, dow


def test_weekend_transitions_stop_paging_once_the_series_has_shown_them():
    for seed in range(3):
        ts, x, _ = _weekly(4, seed)
        s = _score(ts, x)
        assert np.sum(s[8 * DAY_POINTS:] >= DAEMON_THRESHOLD) == 0, seed  # weeks 2-4: no page every weekend


@pytest.mark.xfail(strict=True, reason="known gap (README, Known limits): the daily profile wins on "
                   "weekdays and is surprised at each weekend start; those surprises become precedents "
                   "that cap a same-size anomaly")
def test_a_weekday_at_the_weekend_level_is_flagged():
    ts, x, dow = _weekly(4, 0)
    k = [i for i in range(21 * DAY_POINTS, len(ts)) if dow[i] < 5][0] + DAY_POINTS // 2
    x[k:k + 24] -= 40.0
    assert _score(ts, x)[k:k + 24].max() >= NAB_THRESHOLD


def _bursts(before: int, after: int, pause_days: float) -> tuple[np.ndarray, np.ndarray]:
    """A job's output: 20 for one 5-minute point twice every 100 points, 0 otherwise; the
    series stops after `before` points and resumes `pause_days` later, same pattern."""
    i = np.arange(before + after)
    x = np.where((i % 100 == 0) | (i % 100 == 6), 20.0, 0.0)
    ts = 1_700_000_000.0 + STEP * i + np.where(i >= before, pause_days * 86400.0, 0.0)
    return ts, x


def test_a_series_back_after_a_weeks_silence_does_not_page_on_its_usual_pattern():
    # (the NAB perturbation check's `pauses`: a week without points is not a week observed,
    # so the weekly profile is not judged as if it had seen every hour of the week)
    before = 1220  # about 4 days
    ts, x = _bursts(before, 1500, pause_days=7.0)
    s = DET.score_points(DET.new_state(), ts, x)
    assert s[before:].max() < DAEMON_THRESHOLD, int(np.argmax(s[before:])) + before
    # a point far off its pattern after the pause still pages
    x[before + 350] = 60.0
    assert DET.score_points(DET.new_state(), ts, x)[before + 350] >= DAEMON_THRESHOLD


def test_the_usual_step_and_the_time_not_observed_are_remembered():
    ts, x = _bursts(600, 200, pause_days=7.0)
    st = DET.new_state()
    DET.score_points(st, ts, x)
    assert st.series.scalars[STEP_SLOT] == pytest.approx(STEP, rel=0.02)  # a running median: within 1-2 %
    assert st.series.scalars[SKIPPED] == pytest.approx(7 * 86400.0 - 2 * STEP, rel=1e-4)  # 3 usual steps count as seen
