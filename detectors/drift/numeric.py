"""Numeric two-sample statistics over sorted columns.

The reference is sorted once (in the profile); a cycle sorts the current window and
reads the KS statistic (largest gap between the two empirical CDFs) and the
Wasserstein-1 distance (area between them) off the two sorted runs with the compiled
kernels of `detectors.drift.ecdf`, without merging them. The numbers are the ones
scipy's `ks_2samp` and `wasserstein_distance` give (what Evidently reports), not
approximations of them; a numpy merge gives the same numbers where numba is missing.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import special, stats
from scipy.spatial import distance

from detectors.drift import ecdf

# scipy's ks_2samp computes the exact small-sample distribution up to this size and
# Smirnov's asymptotic kstwo.sf(d, round(en)) above it; we follow the same switch.
SCIPY_EXACT_MAX_N = 10_000
# Evidently floors the reference std it divides Wasserstein by.
WASSERSTEIN_MIN_NORM = 0.001

PValueMode = Literal["exact", "auto"]
# "auto" computes scipy's exact p-value only where the verdict reads it: a feature with
# fewer rows than this on either side is gated by its p-value (DriftParams.small_sample).
# Above it the verdict rests on effect sizes, and the Kolmogorov limit is reported
# (pvalue_method "asymptotic"): scipy's exact method is O(n*m), 15-20 ms per column at
# 5,000 x 5,000 rows, which was most of a 1,000-model sweep.
AUTO_EXACT_BELOW = 1000


@dataclass(frozen=True)
class MergeStats:
    ks: float
    wasserstein_raw: float


def merge_stats(ref_sorted: np.ndarray, cur_sorted: np.ndarray) -> MergeStats:
    """KS statistic and unnormalised Wasserstein-1 of two ascending arrays.

    Equal to scipy's `ks_2samp(...).statistic` (exactly: the correctly rounded rational
    max gap) and `wasserstein_distance` up to float summation order (~1e-15 relative).
    """
    n, m = len(ref_sorted), len(cur_sorted)
    if n == 0 or m == 0:
        return MergeStats(float("nan"), float("nan"))
    if ecdf.usable(n, m):
        ks, area = ecdf.ks_wasserstein(ref_sorted, cur_sorted)
        return MergeStats(ks, area)
    return numpy_merge_stats(ref_sorted, cur_sorted)


def numpy_merge_stats(ref_sorted: np.ndarray, cur_sorted: np.ndarray) -> MergeStats:
    """The same two statistics from one numpy merge of the two runs (no numba needed).

    Both are read off the merged order, where the gap between the two empirical CDFs is
    known at every point; O(n + m) memory and a sort of n + m values.
    """
    n, m = len(ref_sorted), len(cur_sorted)
    if n == 0 or m == 0:
        return MergeStats(float("nan"), float("nan"))
    merged, is_cur = _merge(ref_sorted, cur_sorted)
    n_cur_le: np.ndarray = np.cumsum(is_cur, dtype=np.int32 if n + m < 2**31 else np.int64)
    del is_cur
    n_ref_le = np.arange(1, n + m + 1, dtype=n_cur_le.dtype)
    n_ref_le -= n_cur_le
    # Same operations as scipy: count / n minus count / m, in float64.
    gap = n_ref_le / n
    del n_ref_le
    gap -= n_cur_le / m
    del n_cur_le
    deltas = np.diff(merged)
    del merged
    gap = np.abs(gap[:-1], out=gap[:-1])  # the last point has both CDFs at 1
    wasserstein = float(np.multiply(gap, deltas).sum())  # not np.dot: BLAS threads stall on busy cores
    # Inside a run of equal values the CDFs are only defined at its end: zero the gap
    # at every point followed by an equal one before taking the KS maximum.
    np.multiply(gap, deltas != 0.0, out=gap)
    return MergeStats(float(gap.max()) if len(gap) else 0.0, wasserstein)


def _merge(ref_sorted: np.ndarray, cur_sorted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Merged ascending float64 values and which of them come from the current window.

    float32 values widened to float64 have 29 spare mantissa bits; the lowest one carries
    the origin through a plain (SIMD) sort, then is cleared, giving back exact values.
    Ties may interleave either way, which is harmless: statistics are read at the end
    of each run of equal values. Otherwise a stable argsort merges the two sorted runs.
    """
    n = len(ref_sorted)
    if ref_sorted.dtype == np.float32 and cur_sorted.dtype == np.float32:
        merged = np.concatenate((ref_sorted, cur_sorted)).astype(np.float64)
        bits = merged.view(np.uint64)
        bits[n:] |= np.uint64(1)
        merged.sort()
        is_cur = (bits & np.uint64(1)).astype(bool)
        bits &= ~np.uint64(1)
        return merged, is_cur
    both = np.concatenate((ref_sorted.astype(np.float64, copy=False), cur_sorted.astype(np.float64, copy=False)))
    order = np.argsort(both, kind="stable")  # timsort: two sorted runs merge in O(n + m)
    merged = both[order]
    del both
    return merged, order >= n


def wasserstein_norm(raw: float, reference_std: float) -> float:
    return raw / max(reference_std, WASSERSTEIN_MIN_NORM)


def ks_pvalue(
    d: float,
    ref_sorted: np.ndarray,
    cur_sorted: np.ndarray,
    mode: PValueMode = "exact",
    exact_below: int = AUTO_EXACT_BELOW,
) -> tuple[float, str]:
    """Two-sided KS p-value and how it was computed.

    "exact" returns what scipy.stats.ks_2samp(method="auto") returns, bit for bit: the
    exact distribution up to 10,000 rows, kstwo.sf(d, round(nm/(n+m))) above. The
    latter costs up to ~0.5 s per column at a million rows when d is moderate, so
    "auto" uses the Kolmogorov limit kstwobign.sf(d*sqrt(en)) above that size (about
    0.3 % off, and in that regime the verdict rests on effect sizes, not p-values).
    "auto" also uses that limit when both sides have at least `exact_below` rows (see
    AUTO_EXACT_BELOW): only the p-values a verdict is gated on are computed exactly.
    """
    n, m = len(ref_sorted), len(cur_sorted)
    if n == 0 or m == 0 or not math.isfinite(d):
        return float("nan"), "none"
    big, small = (float(n), float(m)) if n >= m else (float(m), float(n))
    en = big * small / (big + small)
    if mode == "auto" and small >= exact_below:
        return float(np.clip(special.kolmogorov(d * math.sqrt(en)), 0, 1)), "asymptotic"
    if max(n, m) <= SCIPY_EXACT_MAX_N:
        return float(stats.ks_2samp(ref_sorted, cur_sorted).pvalue), "exact"
    if mode == "exact":
        return float(np.clip(stats.kstwo.sf(d, np.round(en)), 0, 1)), "exact"
    # special.kolmogorov is what kstwobign.sf calls, minus ~0.1 ms of argument checking
    return float(np.clip(special.kolmogorov(d * math.sqrt(en)), 0, 1)), "asymptotic"


# ---------------------------------------------------------------- binned statistics


def fill_zero_shares(shares: np.ndarray) -> np.ndarray:
    """Evidently's rule for empty bins in PSI: a tiny share instead of log(0)."""
    nonzero = shares[shares != 0]
    if len(nonzero) == len(shares) or len(nonzero) == 0:
        return shares
    smallest = float(nonzero.min())
    fill = smallest / 10**6 if smallest <= 0.0001 else 0.0001
    return np.where(shares == 0, fill, shares)


def psi(ref_shares: np.ndarray, cur_shares: np.ndarray) -> float:
    r = fill_zero_shares(ref_shares)
    c = fill_zero_shares(cur_shares)
    return float(np.sum((r - c) * np.log(r / c)))


def jensen_shannon(ref_shares: np.ndarray, cur_shares: np.ndarray) -> float:
    """Jensen-Shannon distance, natural log (scipy's default, as Evidently uses it)."""
    return float(distance.jensenshannon(ref_shares, cur_shares))


def sorted_bin_counts(sorted_values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts in (-inf, e1], (e1, e2], ..., (ek, inf) of an ascending array."""
    cuts = np.searchsorted(sorted_values, edges, side="right")
    return np.diff(np.concatenate(([0], cuts, [len(sorted_values)]))).astype(np.int64)


def sorted_runs(sorted_values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values (float64) and their counts of an ascending array."""
    starts = np.flatnonzero(np.concatenate(([True], sorted_values[1:] != sorted_values[:-1])))
    counts = np.diff(np.concatenate((starts, [len(sorted_values)])))
    return sorted_values[starts].astype(np.float64), counts


def aligned_counts(
    ref_values: np.ndarray, ref_counts: np.ndarray, cur_values: np.ndarray, cur_counts: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Union of the distinct values, with each side's counts on it (int64)."""
    keys = np.union1d(ref_values, cur_values)
    r = np.zeros(len(keys), dtype=np.int64)
    c = np.zeros(len(keys), dtype=np.int64)
    r[np.searchsorted(keys, ref_values)] = ref_counts
    c[np.searchsorted(keys, cur_values)] = cur_counts
    return keys, r, c


def count_stats(keys: np.ndarray, ref_counts: np.ndarray, cur_counts: np.ndarray) -> MergeStats:
    """KS and unnormalised Wasserstein-1 from counts on the distinct pooled values.

    The pooled points are the keys, so the gap |R m - C n| at each is exact in integers;
    the same numbers as merge_stats at O(distinct values) once the runs are counted.
    """
    n, m = int(ref_counts.sum()), int(cur_counts.sum())
    if n == 0 or m == 0:
        return MergeStats(float("nan"), float("nan"))
    if n * m >= 2**62:
        gap = np.abs(np.cumsum(ref_counts) / n - np.cumsum(cur_counts) / m)
        return MergeStats(float(gap.max()), float((gap[:-1] * np.diff(keys)).sum()))
    gap = np.abs(np.cumsum(ref_counts) * m - np.cumsum(cur_counts) * n)
    nm = float(n) * float(m)
    return MergeStats(float(gap.max()) / nm, float((gap[:-1] * np.diff(keys)).sum()) / nm)


def value_shares(
    ref_values: np.ndarray, ref_counts: np.ndarray, cur_sorted: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Shares per distinct value over the union of reference and current values."""
    _, r, c = aligned_counts(ref_values, ref_counts, *sorted_runs(cur_sorted))
    return r / ref_counts.sum(), c / len(cur_sorted)


def evidently_binned_shares(
    ref_sorted: np.ndarray, cur_sorted: np.ndarray, ref_distinct: int
) -> tuple[np.ndarray, np.ndarray]:
    """The bins Evidently's PSI/JS use on numeric columns, from sorted columns.

    Above 20 distinct reference values: equal-width Sturges bins over reference and
    current combined (`np.histogram_bin_edges(combined, "sturges")`), counted like
    `np.histogram` ([e_i, e_i+1), last bin closed). Otherwise one bin per value.
    """
    if ref_distinct <= 20:
        dc_starts = np.flatnonzero(np.concatenate(([True], ref_sorted[1:] != ref_sorted[:-1])))
        ref_counts = np.diff(np.concatenate((dc_starts, [len(ref_sorted)])))
        return value_shares(ref_sorted[dc_starts].astype(np.float64), ref_counts, cur_sorted)
    lo = float(min(ref_sorted[0], cur_sorted[0]))
    hi = float(max(ref_sorted[-1], cur_sorted[-1]))
    size = len(ref_sorted) + len(cur_sorted)
    # np.histogram_bin_edges(x, "sturges") without materialising x: the estimator
    # only needs ptp and size.
    edges = np.histogram_bin_edges(np.array([lo, hi]), bins=_sturges_bins(lo, hi, size), range=(lo, hi))
    inner = edges[1:-1]
    ref_cuts = np.searchsorted(ref_sorted, inner, side="left")
    cur_cuts = np.searchsorted(cur_sorted, inner, side="left")
    r = np.diff(np.concatenate(([0], ref_cuts, [len(ref_sorted)])))
    c = np.diff(np.concatenate(([0], cur_cuts, [len(cur_sorted)])))
    return r / len(ref_sorted), c / len(cur_sorted)


def _sturges_bins(lo: float, hi: float, size: int) -> int:
    if hi == lo:
        return 1
    width = (hi - lo) / (np.log2(size) + 1.0)
    return int(np.ceil((hi - lo) / width))
