"""Time-of-day slices of a reference (detectors/drift/time_of_day.py): which rows a window
shorter than a day is judged against, pure functions with the times passed in."""
from __future__ import annotations

import numpy as np
import pandas as pd

from detectors.drift import DriftDetector, DriftParams, FeatureSpec, profile_reference
from detectors.drift.time_of_day import grid_phase, model_span, profile_hours, whole_reference_because, window_span
from detectors.records import FindingKind

DAY, HOUR = 86400.0, 3600.0
D0 = 1_800_000_000.0 - 8 * HOUR  # a midnight UTC
SPECS = [FeatureSpec("device", "categorical")]


def at(hh: float) -> float:
    return D0 + hh * HOUR


def test_a_window_meets_its_hours_widened_by_one_each_side_out_to_the_quarter_hour():
    assert window_span(at(14), at(14.5)).label == "13:00-15:30 UTC"
    assert window_span(at(14.1), at(14.6)).label == "13:00-15:45 UTC"


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
    sliced, n = profile_hours(reference, times, SPECS, window_span(at(1), at(1.5)), 100)
    assert sliced.rows == "00:00-02:30 UTC" and n == 4500
    assert judge(whole, devices(now, rng), 1.5)  # without the slice: warned
    assert judge(sliced, devices(now, rng), 1.5) == []
    assert judge(sliced, devices(now, rng, moved=-0.2), 1.5)  # a real move at that hour is still warned


def test_a_slice_under_min_samples_leaves_the_whole_reference_saying_why():
    rng = np.random.default_rng(4)
    times = np.arange(D0 - DAY, D0, 600.0)  # 15 rows in a 2.5 h span
    reference = devices(times, rng)
    span = window_span(at(6.5), at(7))
    sliced, n = profile_hours(reference, times, SPECS, span, 100)
    assert sliced is None and n == 15
    whole = profile_reference(reference, SPECS)
    said = whole_reference_because(whole, span, n, 100)
    assert said.rows == "whole reference: its 05:30-08:00 UTC rows are 15, fewer than min_samples 100"
    assert said.columns is whole.columns and whole.rows == ""
