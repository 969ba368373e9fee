"""Time-of-day slices of a reference (detectors/drift/time_of_day.py): which rows a window
shorter than a day is judged against, pure functions with the times passed in."""
from __future__ import annotations

import numpy as np
import pandas as pd

from detectors.drift import DriftDetector, DriftParams, FeatureSpec, profile_reference
from detectors.drift.time_of_day import (
    grid_phase,
    keep_rows,
    model_span,
    profile_hours,
    quarter_hour_sample,
    rows_per_quarter_hour,
    whole_reference_because,
    window_span,
)
from detectors.records import FindingKind

DAY, HOUR = 86400.0, 3600.0
D0 = 1_800_000_000.0 - 8 * HOUR  # a midnight UTC
SPECS = [FeatureSpec("device", "categorical")]


def at(hh: float) -> float:
    return D0 + hh * HOUR


def test_a_window_meets_its_hours_widened_by_one_each_side_out_to_the_quarter_hour():
    # to the quarter hour after its widened end, and as long whatever its place on the grid:
    # the span moves once as the window crosses a quarter hour, not at its start and its end
    assert window_span(at(14), at(14.5)).label == "13:00-15:45 UTC"
    assert window_span(at(14.1), at(14.6)).label == "13:00-15:45 UTC"
    assert window_span(at(14) + 14 * 60, at(14.5) + 14 * 60).label == "13:00-15:45 UTC"
    assert window_span(at(14) + 15 * 60, at(14.5) + 15 * 60).label == "13:15-16:00 UTC"


def test_each_model_has_its_own_stable_quarter_hour_grid_still_holding_the_widened_window():
    assert grid_phase("recommender") == 14 * 60 == grid_phase("recommender")
    assert window_span(at(14), at(14.5), phase=14 * 60).label == "12:59-15:44 UTC"
    assert model_span("recommender", at(12.5), at(13)).label == "11:29-14:14 UTC"
    assert {grid_phase(f"m{i}") for i in range(200)} == set(range(0, 900, 60))


def test_a_span_round_midnight_holds_both_sides_of_it():
    span = window_span(at(23 + 10 / 60), at(23 + 40 / 60))
    assert span.label == "22:00-00:45 UTC"
    held = span.holds(np.array([at(22), at(23.9), at(24.5), at(24.75), at(21.99), at(12), np.nan]) + 5 * DAY)
    assert held.tolist() == [True, True, True, False, False, False, False]


def test_a_day_long_window_is_judged_against_the_whole_reference():
    assert window_span(at(0), at(24)) is None
    assert window_span(at(1), at(23)) is None  # widened, it covers the whole day


def ios_share(hours: np.ndarray) -> np.ndarray:
    return 0.5 + 0.4 * np.cos(2 * np.pi * hours / 24)


def devices(times: np.ndarray, rng: np.random.Generator, moved: float = 0.0) -> pd.DataFrame:
    ios = rng.random(len(times)) < ios_share((times % DAY) / HOUR) + moved
    return pd.DataFrame({"device": np.where(ios, "ios", "android")})


def judge(profile, window: pd.DataFrame, hh: float) -> list:
    detector = DriftDetector(DriftParams(statistic="psi", threshold=0.1, min_samples=100, model="m"))
    return [f for f in detector.assess(profile, window, at(hh - 0.5), at(hh)).findings
            if f.kind == FindingKind.FEATURE_DRIFT]


def test_a_traffic_mix_that_follows_the_hour_warns_only_when_its_share_moves_at_that_hour():
    rng = np.random.default_rng(3)
    times = np.arange(D0 - DAY, D0, 2.0)
    reference = devices(times, rng)
    whole = profile_reference(reference, SPECS)
    now = np.arange(at(1), at(1.5), 1.0)  # ios near 89 % then, 50 % over the day
    rows = keep_rows(reference, times, SPECS, 400)  # 450 rows a quarter hour, 400 kept
    sliced, n = profile_hours(rows, SPECS, window_span(at(1), at(1.5)), 100)
    assert sliced.rows == "00:00-02:45 UTC" and n == 4400
    assert judge(whole, devices(now, rng), 1.5)  # without the slice: warned
    assert judge(sliced, devices(now, rng), 1.5) == []
    assert judge(sliced, devices(now, rng, moved=-0.2), 1.5)  # a real move at that hour is still warned


def test_a_slice_under_min_samples_leaves_the_whole_reference_saying_why():
    rng = np.random.default_rng(4)
    times = np.arange(D0 - DAY, D0, 600.0)  # 17 rows in a 2.75 h span
    reference = devices(times, rng)
    span = window_span(at(6.5), at(7))
    sliced, n = profile_hours(keep_rows(reference, times, SPECS, 400), SPECS, span, 100)
    assert sliced is None and n == 17
    whole = profile_reference(reference, SPECS)
    said = whole_reference_because(whole, span, n, 100)
    assert said.rows == "whole reference: its 05:30-08:15 UTC rows are 17, fewer than min_samples 100"
    assert said.columns is whole.columns and whole.rows == ""


def test_the_rows_kept_profile_as_the_reference_does_numbers_in_float32_only_when_harmless():
    rng = np.random.default_rng(5)
    times = np.arange(D0, D0 + 600, 1.0)  # under the cap: every row kept
    reference = pd.DataFrame({
        "x": rng.normal(size=600),
        "served": 1.8e9 + rng.normal(0, 60, 600),  # float32 would move it by 64 s, a sd
        "device": rng.choice(np.array(["ios", "", None, 3, 3.0, "1.0"], dtype=object), 600),
    })
    specs = [FeatureSpec("x"), FeatureSpec("served"), FeatureSpec("device", "categorical")]
    rows = keep_rows(reference, times, specs, 1000)
    assert rows.columns["x"].dtype == np.float32 and rows.columns["served"].dtype == np.float64
    kept, full = profile_reference(rows.frame(np.ones(600, bool)), specs), profile_reference(reference, specs)
    assert np.array_equal(kept.columns["served"].sorted_values, full.columns["served"].sorted_values)
    assert np.allclose(kept.columns["x"].sorted_values, full.columns["x"].sorted_values, rtol=0, atol=1e-6)
    k, f = kept.columns["device"], full.columns["device"]
    assert dict(zip(k.categories, k.category_counts, strict=True)) == \
        dict(zip(f.categories, f.category_counts, strict=True))
    assert k.counts == f.counts


def test_at_most_the_cap_is_kept_each_quarter_hour_evenly_spaced_in_time():
    times = np.arange(D0 - 2 * DAY, D0, 1.0)[::-1]  # 1,800 rows a quarter hour, newest first
    keep = quarter_hour_sample(times, 400, phase=120)
    kept = np.sort(times[keep])
    per_quarter = np.bincount(((kept - 120) % DAY // 900).astype(int), minlength=96)
    assert per_quarter.tolist() == [400] * 96
    first = kept[(kept >= D0 - DAY + 120) & (kept < D0 - DAY + 1020)]  # one quarter hour of one day
    assert len(first) == 200 and set(np.diff(first)) <= {4.0, 5.0}  # 1,800 / 400: every 4.5 s
    assert np.array_equal(keep, quarter_hour_sample(times, 400, phase=120))


def test_a_min_samples_above_what_the_cap_keeps_raises_the_cap_rather_than_drop_the_slice():
    rng = np.random.default_rng(6)
    times = np.arange(D0 - DAY, D0, 1.0)  # 900 rows a quarter hour; a 2.75 h slice: 9,900
    reference = devices(times, rng)
    span = window_span(at(1), at(1.5))
    assert rows_per_quarter_hour(100) == 400 and rows_per_quarter_hour(5000) == 556
    sliced, n = profile_hours(keep_rows(reference, times, SPECS, rows_per_quarter_hour(5000)), SPECS, span, 5000)
    assert sliced is not None and n == 11 * 556
