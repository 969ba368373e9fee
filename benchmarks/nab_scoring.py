"""The Numenta Anomaly Benchmark scoring rules, as NAB's own scorer applies them (pure).

Rules (see ../shared/data/nab/README.md and NAB's `nab/sweeper.py`):

- the first 15 % of each file, at most 750 rows, is probationary: ignored;
- a detection is a row whose anomaly score is >= the threshold;
- inside a window only the earliest detection counts, worth
  `A_TP * S(p) / S(-1)` with `p = -(right - i + 1) / width` and
  `S(x) = 2 / (1 + exp(5 x)) - 1`; a window with no detection costs `-A_FN`;
- a detection outside any window costs `A_FP * S(q)`, `q = |i - prev_right| /
  (prev_width - 1)`, and `S = -1` where no window precedes it or `q >= 3`;
- one threshold per profile for the whole corpus, the one that maximises the summed
  raw score (every distinct scored value is a candidate, plus 1.1 which detects
  nothing; the highest threshold wins a tie);
- normalised score `100 * (raw - raw_null) / (raw_perfect - raw_null)`.

Everything here is vectorised over rows: sweeping all thresholds of a 180k-row corpus
is one sort and one cumulative sum.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

PROBATION_FRACTION = 0.15
PROBATION_MAX_ROWS = 750.0  # NAB: min(floor(0.15 * n), 0.15 * 5000)
NOTHING_THRESHOLD = 1.1  # NAB's "detect nothing" candidate


@dataclass(frozen=True)
class CostProfile:
    name: str
    tp_weight: float
    fp_weight: float
    fn_weight: float


PROFILES: tuple[CostProfile, ...] = (
    CostProfile("standard", 1.0, 0.11, 1.0),
    CostProfile("reward_low_FP_rate", 1.0, 0.22, 1.0),
    CostProfile("reward_low_FN_rate", 1.0, 0.11, 2.0),
)


def scaled_sigmoid(x: np.ndarray | float) -> np.ndarray:
    """NAB's S(x) = 2 * sigmoid(-5 x) - 1, and -1 from x >= 3 on (a far false positive)."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(over="ignore"):
        s = 2.0 / (1.0 + np.exp(5.0 * x)) - 1.0
    return np.where(x >= 3.0, -1.0, s)


_MAX_TP = float(2.0 / (1.0 + math.exp(-5.0)) - 1.0)  # S(-1): a left-edge detection


def probation_length(n_rows: int) -> float:
    return min(math.floor(PROBATION_FRACTION * n_rows), PROBATION_FRACTION * 5000)


@dataclass(frozen=True)
class LabelledFile:
    """One file's per-row scoring geometry, independent of the detector's scores.

    `window` is the window id of each scorable row (-1 outside windows); `unit` is the
    row's unweighted sweep value: S(p)/S(-1) inside a window (multiplied by A_TP), S(q)
    outside (multiplied by A_FP). Probationary rows are dropped (`rows` keeps the
    original index of each scorable row).
    """

    name: str
    n_rows: int
    windows: tuple[tuple[int, int], ...]  # (first, last) row index, inclusive
    rows: np.ndarray  # int64 original row index of each scorable row
    window: np.ndarray  # int64, -1 outside windows
    unit: np.ndarray  # float64


def window_bounds(name: str, timestamps: np.ndarray, windows: list[list[str]] | list[tuple[str, str]]
                  ) -> tuple[tuple[int, int], ...]:
    """Row indices of each window's first and last timestamp (both must be rows of the file)."""
    ts = np.asarray(timestamps).astype("datetime64[us]")
    bounds: list[tuple[int, int]] = []
    for pair in windows:
        if len(pair) != 2:
            raise ValueError(f"{name}: a window must be [start, end], got {pair!r}")
        idx = []
        for edge in pair:
            t = np.datetime64(str(edge).replace(" ", "T"), "us")
            k = int(np.searchsorted(ts, t))
            if k >= len(ts) or ts[k] != t:
                raise ValueError(f"{name}: window edge {edge!r} is not a timestamp of the file")
            idx.append(k)
        if idx[1] < idx[0]:
            raise ValueError(f"{name}: window {pair!r} ends before it starts")
        bounds.append((idx[0], idx[1]))
    bounds.sort()
    for (_, e0), (s1, _) in pairwise(bounds):
        if s1 <= e0:
            raise ValueError(f"{name}: windows overlap around row {s1}")
    return tuple(bounds)


def label_file(name: str, n_rows: int, windows: tuple[tuple[int, int], ...]) -> LabelledFile:
    i = np.arange(n_rows, dtype=np.int64)
    window = np.full(n_rows, -1, dtype=np.int64)
    unit = np.full(n_rows, -1.0)  # a false positive before any window costs the full A_FP
    for k, (start, end) in enumerate(windows):
        width = float(end - start + 1)
        inside = slice(start, end + 1)
        window[inside] = k
        unit[inside] = scaled_sigmoid(-(end - i[inside] + 1) / width) / _MAX_TP
        stop = windows[k + 1][0] if k + 1 < len(windows) else n_rows
        after = slice(end + 1, stop)
        if width > 1:
            unit[after] = scaled_sigmoid(np.abs(i[after] - end) / (width - 1.0))
        # a one-row window has no "distance past it": NAB would divide by zero; a full cost is the
        # only reading that does not reward a detector for it
    keep = i >= probation_length(n_rows)
    return LabelledFile(name, n_rows, windows, i[keep], window[keep], unit[keep])


@dataclass(frozen=True)
class ProfileResult:
    profile: str
    threshold: float
    raw: float
    normalised: float
    windows_hit: int
    n_windows: int
    false_positive_rows: int
    raw_null: float
    raw_perfect: float


@dataclass(frozen=True)
class ThresholdCurve:
    """Raw score, windows hit and false-positive rows at every candidate threshold
    (descending thresholds; the first is NOTHING_THRESHOLD)."""

    thresholds: np.ndarray
    raw: np.ndarray
    windows_hit: np.ndarray
    false_positive_rows: np.ndarray
    n_windows: int


def _stack(files: list[LabelledFile], scores: list[np.ndarray]
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    if len(files) != len(scores):
        raise ValueError(f"files ({len(files)}) and scores ({len(scores)}) must pair up")
    s_parts, w_parts, u_parts = [], [], []
    offset = 0
    for f, s in zip(files, scores, strict=True):  # lengths checked above
        s = np.asarray(s, dtype=np.float64)
        if s.shape != (f.n_rows,):
            raise ValueError(f"{f.name}: expected {f.n_rows} anomaly scores, got shape {s.shape}")
        if np.isnan(s).any():
            raise ValueError(f"{f.name}: anomaly scores contain NaN")
        s_parts.append(s[f.rows])
        w_parts.append(np.where(f.window >= 0, f.window + offset, -1))
        u_parts.append(f.unit)
        # a window counts only if some scorable row lies in it (NAB builds its parts from those)
        offset += len(f.windows)
    return (np.concatenate(s_parts) if s_parts else np.empty(0),
            np.concatenate(w_parts) if w_parts else np.empty(0, np.int64),
            np.concatenate(u_parts) if u_parts else np.empty(0), offset)


def threshold_curve(files: list[LabelledFile], scores: list[np.ndarray],
                    profile: CostProfile) -> ThresholdCurve:
    """The corpus raw score at every distinct score value used as the threshold."""
    s, w, u, _ = _stack(files, scores)
    n_windows = int(np.unique(w[w >= 0]).size)
    order = np.argsort(-s, kind="stable")
    s, w, u = s[order], w[order], u[order]

    delta = np.where(w < 0, profile.fp_weight * u, 0.0)
    first_hit = np.zeros(len(s), dtype=np.int64)
    in_win = np.flatnonzero(w >= 0)
    if in_win.size:
        # per window, rows in descending-score order: the credit is the running max of
        # A_TP * unit (the earliest detection so far), starting from -A_FN
        by_window = in_win[np.argsort(w[in_win], kind="stable")]
        wid = w[by_window]
        cuts = np.flatnonzero(np.diff(wid)) + 1
        for seg in np.split(by_window, cuts):
            credit = np.maximum.accumulate(profile.tp_weight * u[seg])
            prev = np.concatenate(([-profile.fn_weight], credit[:-1]))
            delta[seg] = credit - prev
            first_hit[seg[0]] = 1
    raw_all = -profile.fn_weight * n_windows + np.cumsum(delta)
    hits = np.cumsum(first_hit)
    fps = np.cumsum(w < 0)
    ends = np.flatnonzero(np.append(s[1:] != s[:-1], True)) if len(s) else np.empty(0, np.int64)
    return ThresholdCurve(
        thresholds=np.concatenate(([NOTHING_THRESHOLD], s[ends])),
        raw=np.concatenate(([-profile.fn_weight * n_windows], raw_all[ends])),
        windows_hit=np.concatenate(([0], hits[ends])),
        false_positive_rows=np.concatenate(([0], fps[ends])),
        n_windows=n_windows,
    )


def optimise(files: list[LabelledFile], scores: list[np.ndarray],
             profile: CostProfile) -> ProfileResult:
    """NAB's corpus-wide threshold optimisation for one cost profile."""
    curve = threshold_curve(files, scores, profile)
    best = int(np.argmax(curve.raw))  # first maximum = highest threshold among ties
    return _result(curve, best, profile)


def score_at(files: list[LabelledFile], scores: list[np.ndarray], profile: CostProfile,
             threshold: float) -> ProfileResult:
    """The corpus score at a fixed threshold (detections: score >= threshold)."""
    curve = threshold_curve(files, scores, profile)
    k = int(np.searchsorted(-curve.thresholds, -threshold, side="right")) - 1
    return _result(curve, max(k, 0), profile, threshold)


def _result(curve: ThresholdCurve, k: int, profile: CostProfile,
            threshold: float | None = None) -> ProfileResult:
    null = -profile.fn_weight * curve.n_windows
    perfect = profile.tp_weight * curve.n_windows
    raw = float(curve.raw[k])
    span = perfect - null
    return ProfileResult(
        profile=profile.name,
        threshold=float(curve.thresholds[k]) if threshold is None else float(threshold),
        raw=raw,
        normalised=100.0 * (raw - null) / span if span > 0 else 0.0,
        windows_hit=int(curve.windows_hit[k]),
        n_windows=curve.n_windows,
        false_positive_rows=int(curve.false_positive_rows[k]),
        raw_null=null,
        raw_perfect=perfect,
    )
