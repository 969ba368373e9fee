"""The reference rows from the window's time of day, profiled once per span of hours
(detectors/drift/time_of_day.py).

Per model: a bounded sample of the rows of its current reference with their times of day
(DayRows: at most a cap a quarter hour of the day; the rolling reference's samples, or the
training file's rows when `reference.timestamp_column` names their times), and the
profiles of the last spans of hours asked. Hourly cycles pay for one
slice's profile (a few hours of rows) when the window enters a new hour; a repeat cycle
in the same span pays nothing more.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from detectors.drift import FeatureSpec, ReferenceProfile
from detectors.drift.time_of_day import (
    DayRows,
    DaySpan,
    grid_phase,
    keep_rows,
    profile_hours,
    rows_per_quarter_hour,
    whole_reference_because,
)

KEEP_SPANS = 2  # slice profiles kept per model: the window's span and the one before it


@dataclass
class _Rows:
    key: Hashable
    rows: DayRows
    profiles: OrderedDict[DaySpan, tuple[ReferenceProfile | None, int]] = field(default_factory=OrderedDict)


class TimeOfDaySlices:
    """A sweep's threads share it; each model has its own entry, swapped whole under the lock."""

    def __init__(self) -> None:
        self._held: dict[str, _Rows] = {}
        self._lock = threading.Lock()

    def hold(self, model: str, key: Hashable, frame: pd.DataFrame, times: np.ndarray, features: list[FeatureSpec],
             min_samples: int) -> None:
        """Keep `frame`'s rows (their epoch-second `times`) as the model's reference `key`: at
        most rows_per_quarter_hour(min_samples) in each quarter hour of the model's grid."""
        rows = keep_rows(frame, times, features, rows_per_quarter_hour(min_samples), grid_phase(model))
        with self._lock:
            self._held[model] = _Rows(key, rows)

    def held_bytes(self, model: str) -> int:
        """The memory the model's rows take (0 when none are held)."""
        with self._lock:
            held = self._held.get(model)
        return 0 if held is None else held.rows.nbytes

    def holds(self, model: str, key: Hashable) -> bool:
        with self._lock:
            held = self._held.get(model)
        return held is not None and held.key == key

    def judge_against(self, model: str, key: Hashable, whole: ReferenceProfile, features: list[FeatureSpec],
                      span: DaySpan, min_samples: int) -> ReferenceProfile:
        """The profile of reference `key`'s rows in `span`; `whole` when the rows held are
        another reference's (or none), and `whole` saying why when the span holds too few."""
        with self._lock:
            held = self._held.get(model)
        if held is None or held.key != key:
            return whole
        got = held.profiles.get(span)
        if got is None:
            got = held.profiles[span] = profile_hours(held.rows, features, span, min_samples)
            while len(held.profiles) > KEEP_SPANS:
                held.profiles.popitem(last=False)
        profile, n = got
        return profile if profile is not None else whole_reference_because(whole, span, n, min_samples)
