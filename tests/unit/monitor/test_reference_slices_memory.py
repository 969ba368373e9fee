"""A model's time-of-day rows are bounded whatever its reference's length or rate: at most
ROWS_PER_QUARTER_HOUR a quarter hour of the day, compactly (the whole reference was held:
about 9.7 MB a model for a day at one row a second, seven times that for a week)."""
from __future__ import annotations

import gc
import tracemalloc

import numpy as np
import pandas as pd

from detectors.drift import FeatureSpec, profile_reference
from detectors.drift.time_of_day import ROWS_PER_QUARTER_HOUR, model_span
from monitor.cycle.reference_slices import TimeOfDaySlices

DAY = 86400.0
D0 = 1_800_000_000.0 - 8 * 3600.0  # a midnight UTC
SPECS = [FeatureSpec(f"x{i}") for i in range(3)] + [FeatureSpec("device", "categorical")]


def week_of_samples() -> tuple[pd.DataFrame, np.ndarray]:
    times = np.arange(D0 - 7 * DAY, D0, 1.0)  # 604,800 rows
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({f"x{i}": rng.normal(size=len(times)) for i in range(3)})
    frame["device"] = np.where(rng.random(len(times)) < 0.3, "ios", "android")
    return frame, times


def test_a_week_of_one_second_samples_keeps_at_most_the_cap_a_quarter_hour_in_under_a_megabyte():
    slices = TimeOfDaySlices()
    gc.collect()
    tracemalloc.start()
    try:
        frame, times = week_of_samples()
        slices.hold("m", "ref", frame, times, SPECS, 100)
        del frame, times
        gc.collect()
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    cap_bytes = 96 * ROWS_PER_QUARTER_HOUR * (3 * 4 + 1 + 4)  # float32 features, int8 codes, int32 times
    assert held < 1.2 * cap_bytes, f"held {held / 1e6:.1f} MB"  # 57.3 MB before: the whole week
    assert slices.held_bytes("m") <= cap_bytes + 1024  # and the category names

    end = D0 + 13 * 3600
    span = model_span("m", end - 1800, end)
    whole = profile_reference(week_of_samples()[0].head(1000), SPECS)
    sliced = slices.judge_against("m", "ref", whole, SPECS, span, 100)
    assert sliced.rows == span.label
    assert sliced.n_rows == span.length // 900 * ROWS_PER_QUARTER_HOUR  # a 2.75 h slice: 4,400 rows

    again = TimeOfDaySlices()  # the same rows kept every time: the verdicts reproduce
    again.hold("m", "ref", *week_of_samples(), SPECS, 100)
    repeat = again.judge_against("m", "ref", whole, SPECS, span, 100)
    for f in SPECS:
        a, b = sliced.columns[f.name], repeat.columns[f.name]
        assert a.counts == b.counts
        if f.type == "numeric":
            assert np.array_equal(a.sorted_values, b.sorted_values)
        else:
            assert a.categories == b.categories and np.array_equal(a.category_counts, b.category_counts)
