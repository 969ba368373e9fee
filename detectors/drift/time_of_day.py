"""The reference rows from a window's time of day.

A feature with a daily cycle (the traffic mix, an hour-of-day feature, prices by the
hour) judged against a whole day of reference rows drifts at every hour: a window
shorter than a day only ever holds part of the cycle. A window under a day is judged
against the reference rows from its own times of day (UTC), widened by an hour each side
(daylight-saving shifts, jitter), out to the quarter hour (so hourly cycles, or one a
minute, profile a new slice at most twice a quarter hour; each model's quarter hours are
offset by a stable 0-14 minutes, grid_phase, so a fleet's re-profiles spread over the
quarter hour rather than land in one sweep) and read round midnight; a slice
under `min_samples` rows leaves the whole reference to judge. Pure: the times are passed in.

Whole hours were tried first: a window 12:30-13:00 then met the rows 11:00-14:00,
centred 15 minutes early, and a steep daily cycle (3 sd a day) still warned at 6 hours
of 24; centred to the quarter hour, at none.
"""
from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from detectors.drift.modes import profile_reference
from detectors.drift.profile import FeatureSpec, ReferenceProfile

HOUR = 3600.0
DAY = 24 * HOUR
WIDEN = HOUR  # each side of the window
GRID = 900.0  # span bounds on the quarter hour


@dataclass(frozen=True)
class DaySpan:
    """`length` seconds of the day (UTC) from second `start` of the day, round midnight
    (23:00-02:00 holds 23:30 and 01:15)."""

    start: int
    length: int

    @property
    def label(self) -> str:
        return f"{_clock(self.start)}-{_clock(self.start + self.length)} UTC"

    def holds(self, times: np.ndarray) -> np.ndarray:
        """Which of `times` (epoch seconds) fall in the span; a missing time falls in none."""
        t = np.asarray(times, dtype=float)
        of_day = np.nan_to_num(t, nan=0.0, posinf=0.0, neginf=0.0) % DAY
        return np.isfinite(t) & ((of_day - self.start) % DAY < self.length)


def _clock(second: int) -> str:
    minutes = second % int(DAY) // 60
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def window_span(start: float, end: float, widen: float = WIDEN, phase: float = 0.0) -> DaySpan | None:
    """The times of day the window [start, end] covers, widened by `widen` each side and out
    to the quarter hour (a grid shifted by `phase` seconds); None for a window of a day or
    more (or one widened to all of it): every time of day is then like-for-like."""
    if end - start >= DAY:
        return None
    lo, hi = math.floor((start - widen - phase) / GRID), math.ceil((end + widen - phase) / GRID)
    if (hi - lo) * GRID >= DAY:
        return None
    return DaySpan(int((lo * GRID + phase) % DAY), int((hi - lo) * GRID))


def grid_phase(model: str) -> int:
    """A stable offset of the model's quarter-hour grid, 0-14 whole minutes from its name: a
    fleet's spans move a few models a minute, not all at the quarter hour in one sweep."""
    return zlib.crc32(model.encode()) % int(GRID // 60) * 60


def model_span(model: str, start: float, end: float) -> DaySpan | None:
    """The window's span for `model`: window_span on the model's own grid (grid_phase)."""
    return window_span(start, end, phase=grid_phase(model))


def profile_hours(reference: pd.DataFrame, times: np.ndarray, features: list[FeatureSpec], span: DaySpan,
                  min_samples: int) -> tuple[ReferenceProfile | None, int]:
    """The profile of the reference rows whose time falls in `span` (its `rows` saying so),
    and their number; None for the profile when they are fewer than `min_samples`."""
    keep = span.holds(times)
    n = int(keep.sum())
    if n < min_samples:
        return None, n
    profile = profile_reference(reference.loc[keep], features)
    return replace(profile, rows=span.label), n


def whole_reference_because(profile: ReferenceProfile, span: DaySpan, n: int, min_samples: int) -> ReferenceProfile:
    """The whole reference, saying why its `span` rows were not used (shares `profile`'s columns)."""
    return replace(profile, rows=f"whole reference: its {span.label} rows are {n:,}, fewer than min_samples "
                                 f"{min_samples:,}")
