"""The reference rows from a window's time of day.

A feature with a daily cycle (the traffic mix, an hour-of-day feature, prices by the
hour) judged against a whole day of reference rows drifts at every hour: a window
shorter than a day only ever holds part of the cycle. A window under a day is judged
against the reference rows from its own times of day (UTC), widened by an hour each side
(daylight-saving shifts, jitter), out to the quarter hour (so a cycle a minute profiles a
new slice once a quarter hour; each model's quarter hours are offset by a stable 0-14
minutes, grid_phase, so a fleet's re-profiles spread over the quarter hour rather than land
in one sweep) and read round midnight; a slice under `min_samples` rows leaves the whole
reference to judge. Pure: the times are passed in.

The rows a slice is cut from are a sample of the reference kept once (DayRows): at most
ROWS_PER_QUARTER_HOUR in each quarter hour of the day, evenly spaced in time within it (the
same rows every time), numeric features in float32 when that moves no value by more than
FLOAT32_ERROR of the column's sd, categorical ones as codes, times as the second of the day.
A model's rows are then bounded whatever its reference's length or rate: 2.15 MB at 13
numeric features, where a 1-day reference at one row a second held 9.7 MB (7 days: 68 MB).

Whole hours were tried first: a window 12:30-13:00 then met the rows 11:00-14:00,
centred 15 minutes early, and a steep daily cycle (3 sd a day) still warned at 6 hours
of 24; centred to the quarter hour, at none.
"""
from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from detectors.drift.modes import profile_reference
from detectors.drift.profile import FeatureSpec, ReferenceProfile

HOUR = 3600.0
DAY = 24 * HOUR
WIDEN = HOUR  # each side of the window
GRID = 900.0  # span bounds on the quarter hour
# Reference rows kept per quarter hour of the day: a 30-minute window's slice (2.75 h) is cut
# from 4,400 of them, a window of no length's (2.25 h) from 3,600; 38,400 a day in all.
ROWS_PER_QUARTER_HOUR = 400
NARROWEST_SLICE = 9  # quarter hours in the narrowest slice: a window of no length (window_span)
FLOAT32_ERROR = 1e-5  # numeric rows kept in float32 when no value moves more than this many sd


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
    more (or one widened to all of it): every time of day is then like-for-like.

    The span ends on the first quarter hour after the widened end and is as many quarter
    hours long as the widened window, plus one (so it holds its start): it moves only when
    the end crosses the grid. Start and end taken apart crossed it a minute apart, and a
    cycle a minute re-profiled its slice twice a quarter hour."""
    if end - start >= DAY:
        return None
    hi = math.floor((end + widen - phase) / GRID) + 1
    lo = hi - math.ceil((end - start + 2 * widen) / GRID) - 1
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


def rows_per_quarter_hour(min_samples: int) -> int:
    """ROWS_PER_QUARTER_HOUR, or more when the narrowest slice could not reach `min_samples`."""
    return max(ROWS_PER_QUARTER_HOUR, -(-min_samples // NARROWEST_SLICE))


def quarter_hour_sample(times: np.ndarray, cap: int, phase: float = 0.0) -> np.ndarray:
    """Which rows to keep (a mask): at most `cap` in each quarter hour of the day (on the grid
    shifted by `phase` seconds, as the model's spans), evenly spaced in time within it, so the
    same rows are kept every time; a row without a time is not (it falls in no span)."""
    t = np.asarray(times, dtype=float)
    rows = np.flatnonzero(np.isfinite(t))
    bucket = ((t[rows] - phase) % DAY // GRID).astype(np.int64)
    order = np.lexsort((t[rows], bucket))  # by quarter hour, then time
    rows, bucket = rows[order], bucket[order]
    counts = np.bincount(bucket, minlength=int(DAY // GRID))
    n = counts[bucket]
    rank = np.arange(len(rows)) - (np.cumsum(counts) - counts)[bucket]  # the row's place in its quarter hour
    pick = (rank * cap + n - 1) // n  # the first of `cap` evenly spaced places at or after it
    keep = np.zeros(len(t), dtype=bool)
    keep[rows[(n <= cap) | ((pick < cap) & (pick * n // cap == rank))]] = True
    return keep


@dataclass(frozen=True)
class DayRows:
    """The reference rows a model's time-of-day slices are cut from (keep_rows)."""

    columns: dict[str, Any]  # feature -> its values (numpy or pandas array), in row order
    of_day: np.ndarray  # int32: each row's second of the day (UTC)

    @property
    def nbytes(self) -> int:
        return self.of_day.nbytes + sum(int(pd.Series(c, copy=False).memory_usage(index=False, deep=True))
                                        for c in self.columns.values())

    def frame(self, keep: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame({name: values[keep] for name, values in self.columns.items()})


def keep_rows(reference: pd.DataFrame, times: np.ndarray, features: list[FeatureSpec], cap: int,
              phase: float = 0.0) -> DayRows:
    """`reference`'s rows at their epoch-second `times`, at most `cap` a quarter hour of the day
    (quarter_hour_sample), stored compactly. The second of the day is floored: spans start and
    end on whole seconds, so it falls in the same spans."""
    keep = quarter_hour_sample(times, cap, phase)
    of_day = (np.asarray(times, dtype=float)[keep] % DAY).astype(np.int32)
    return DayRows({f.name: _compact(reference[f.name][keep], f.type) for f in features}, of_day)


def _compact(series: pd.Series, kind: str) -> Any:
    """Numbers as float32 when no value moves more than FLOAT32_ERROR sd (else float64);
    categories as codes; other columns (times, text of a numeric feature) as they are, so the
    profile reads them as it reads the reference."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        return series.array
    if kind == "categorical":
        try:
            codes, uniques = pd.factorize(series, use_na_sentinel=True)
        except TypeError:  # unhashable values (a parquet list column): as they are
            return series.array
        return pd.Categorical.from_codes(codes, categories=pd.Index(uniques, tupleize_cols=False))
    if pd.api.types.is_bool_dtype(series.dtype) or pd.api.types.is_numeric_dtype(series.dtype):
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        with np.errstate(over="ignore"):
            narrow = values.astype(np.float32)
        finite = np.isfinite(values)
        if not finite.any():
            return narrow
        moved = np.abs(narrow[finite].astype(np.float64) - values[finite])  # inf beyond float32's range
        return narrow if moved.max() <= FLOAT32_ERROR * float(np.std(values[finite])) else values
    return series.array


def profile_hours(rows: DayRows, features: list[FeatureSpec], span: DaySpan,
                  min_samples: int) -> tuple[ReferenceProfile | None, int]:
    """The profile of the kept rows whose time falls in `span` (its `rows` saying so), and
    their number; None for the profile when they are fewer than `min_samples`."""
    keep = span.holds(rows.of_day)
    n = int(keep.sum())
    if n < min_samples:
        return None, n
    profile = profile_reference(rows.frame(keep), features)
    return replace(profile, rows=span.label), n


def whole_reference_because(profile: ReferenceProfile, span: DaySpan, n: int, min_samples: int) -> ReferenceProfile:
    """The whole reference, saying why its `span` rows were not used (shares `profile`'s columns)."""
    return replace(profile, rows=f"whole reference: its {span.label} rows are {n:,}, fewer than min_samples "
                                 f"{min_samples:,}")
