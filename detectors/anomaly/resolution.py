"""A series at a coarser resolution: the mean of each complete bin, stamped at the bin's end.

Why: the detector's false alarms on healthy noise are a rate per *point* (new records, and
heavy-tailed surprises the likelihood calls impossible), so a series queried every 60 s
raises several times the false alarms per day of the same series at 5 minutes, the
resolution the detector is tuned and measured at (NAB, `benchmarks.anomaly_null`).
Scoring bin means trades that for a few minutes' delay and less weight on bursts shorter
than a bin.

Bins are aligned to multiples of `seconds` since the epoch, so overlapping windows of
later cycles cut the same bins. A bin is given only when the window holds all of it: its
end is at or before `until` (a bin scored half-full would be skipped when it fills, since
the detector never scores a timestamp twice), and the window's first point is less than
one sampling step after its start (a window starting mid-bin, after a late cycle or an
outage, would give the mean of its last points only). Whether to bin at all is the
caller's decision (the daemon: only when the query step is finer than `seconds`).
"""
from __future__ import annotations

import math

import numpy as np

from detectors.records import Series


def to_resolution(series: Series, seconds: float, until: float) -> Series:
    """Bin means of `series` every `seconds`, for the bins the window holds whole and that
    end at or before `until`. A bin without a value (only NaN, or no point) is left out,
    never made a zero. With `seconds` <= 0 the series is returned as it is."""
    if seconds <= 0:
        return series
    ts = np.asarray(series.timestamps, dtype=np.float64)
    xs = np.asarray(series.values, dtype=np.float64)
    first_ts = float(ts[0]) if len(ts) else math.nan
    step = float(np.median(np.diff(ts))) if len(ts) >= 2 else seconds
    ok = ~(np.isnan(ts) | np.isnan(xs))
    ts, xs = ts[ok], xs[ok]
    bins = np.floor(ts / seconds)
    whole = (bins + 1.0) * seconds <= until
    if len(bins) and first_ts - bins[0] * seconds >= step:  # the window starts inside its first bin
        whole &= bins != bins[0]
    bins, xs = bins[whole], xs[whole]
    if len(bins) == 0:
        return Series(series.name, series.labels, np.empty(0), np.empty(0))
    first, inverse = np.unique(bins, return_inverse=True)
    means = np.bincount(inverse, weights=xs) / np.bincount(inverse)
    return Series(series.name, series.labels, (first + 1.0) * seconds, means)


def at_timestamps(series: Series, timestamps: np.ndarray) -> np.ndarray:
    """The values of `series` at exactly these timestamps, NaN where it has none (two
    range queries over one window and step share their timestamps)."""
    out = np.full(len(timestamps), np.nan)
    _, have, at = np.intersect1d(np.asarray(series.timestamps, dtype=np.float64),
                                 np.asarray(timestamps, dtype=np.float64), return_indices=True)
    out[at] = np.asarray(series.values, dtype=np.float64)[have]
    return out
