"""A fleet's time-of-day slices are re-profiled spread over the quarter hour, not all in one
sweep: each model's quarter-hour grid is offset by a stable phase of its own."""
from __future__ import annotations

import numpy as np
import pandas as pd

from detectors.drift import FeatureSpec, ReferenceProfile, profile_reference
from detectors.drift.time_of_day import model_span
from monitor.cycle import reference_slices
from monitor.cycle.reference_slices import TimeOfDaySlices

DAY, MINUTE = 86400.0, 60.0
D0 = 1_800_000_000.0 - 8 * 3600.0  # a midnight UTC
SPECS = [FeatureSpec("x", "numeric")]
MODELS = [f"model-{i}" for i in range(300)]


def held(models: list[str], monkeypatch) -> tuple[TimeOfDaySlices, ReferenceProfile, list[str]]:
    """A day of reference rows held for each of `models`, and the list each profile of a slice
    is counted in."""
    times = np.arange(D0 - DAY, D0, 60.0)
    frame = pd.DataFrame({"x": np.random.default_rng(1).normal(size=len(times))})
    slices = TimeOfDaySlices()
    for m in models:
        slices.hold(m, "ref", frame, times, SPECS, 10)
    calls: list[str] = []
    real = reference_slices.profile_hours
    monkeypatch.setattr(reference_slices, "profile_hours",
                        lambda *a, **kw: calls.append("x") or real(*a, **kw))
    return slices, profile_reference(frame, SPECS), calls


def test_a_model_on_minute_cycles_re_profiles_its_slice_once_a_quarter_hour(monkeypatch):
    """The span's start and end crossed the quarter hour a minute apart: two profiles each time."""
    slices, whole, calls = held(["recommender"], monkeypatch)
    for k in range(61):  # an hour of minute cycles
        end = D0 + 13 * 3600 + k * MINUTE
        slices.judge_against("recommender", "ref", whole, SPECS, model_span("recommender", end - 1800, end), 10)
    assert len(calls) == 1 + 4


def test_a_fleet_re_profiles_about_a_fifteenth_of_its_slices_each_minute(monkeypatch):
    slices, whole, calls = held(MODELS, monkeypatch)
    per_cycle = []
    for k in range(16):  # the first cycle profiles every model once; then 15 minute-cycles
        end = D0 + 13 * 3600 + k * MINUTE
        calls.clear()
        for m in MODELS:
            slices.judge_against(m, "ref", whole, SPECS, model_span(m, end - 1800, end), 10)
        per_cycle.append(len(calls))
    assert per_cycle[0] == len(MODELS)
    # Each model's span moves once a quarter hour: about N/15 profiles a minute, never the whole
    # fleet in one sweep.
    assert sum(per_cycle[1:]) == len(MODELS)
    assert max(per_cycle[1:]) <= 2 * len(MODELS) / 15, per_cycle  # 13-26 seen; all 300 once
