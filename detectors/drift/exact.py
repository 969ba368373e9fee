"""Exact mode: the reference keeps every finite value, sorted; statistics are exact.

The default profiling mode (see modes.py). The current window is sorted and read
against the sorted reference: KS and Wasserstein-1 from the two sorted runs (ecdf.py),
PSI and JS on reference-decile bins, one bin per value for low-cardinality columns.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from detectors.drift.columns import ColumnCounts, numeric_column
from detectors.drift.numeric import (
    AUTO_EXACT_BELOW,
    PValueMode,
    aligned_counts,
    count_stats,
    jensen_shannon,
    ks_pvalue,
    merge_stats,
    psi,
    sorted_bin_counts,
    sorted_runs,
    value_shares,
    wasserstein_norm,
)
from detectors.drift.profile import (
    DEFAULT_QUANTILE_BINS,
    LOW_CARDINALITY_MAX,
    CategoricalProfile,
    FeatureSpec,
    NumericProfile,
    ProfileModeName,
    ReferenceProfile,
    bin_counts,
    distinct_counts,
    mean_std,
    profile_categorical,
    quantile_edges,
)
from detectors.drift.threads import in_threads


def profile_numeric(series: pd.Series, quantile_bins: int = DEFAULT_QUANTILE_BINS) -> NumericProfile:
    col = numeric_column(series)
    values = np.sort(col.values)
    return numeric_profile_from_sorted(values, col.counts, quantile_bins)


def numeric_profile_from_sorted(
    values: np.ndarray, counts: ColumnCounts, quantile_bins: int = DEFAULT_QUANTILE_BINS
) -> NumericProfile:
    if len(values):
        mean, std = mean_std(values)
        lo, hi = float(values[0]), float(values[-1])
    else:
        mean = std = lo = hi = float("nan")
    edges = quantile_edges(values, quantile_bins)
    dc = distinct_counts(values, LOW_CARDINALITY_MAX)
    return NumericProfile(
        counts=counts,
        sorted_values=values,
        mean=mean,
        std=std,
        minimum=lo,
        maximum=hi,
        edges=edges,
        edge_counts=bin_counts(values, edges),
        distinct=None if dc is None else dc[0],
        distinct_counts=None if dc is None else dc[1],
    )


def binned_shares(ref: NumericProfile, cur_sorted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """PSI/JS bins: one per value for low-cardinality columns, reference deciles otherwise."""
    if ref.distinct is not None and ref.distinct_counts is not None:
        return value_shares(ref.distinct, ref.distinct_counts, cur_sorted)
    cur_counts = sorted_bin_counts(cur_sorted, ref.edges)
    return ref.edge_counts / ref.edge_counts.sum(), cur_counts / len(cur_sorted)


class ExactMode:
    """Profile every value; compare exactly (p-values per `pvalues`)."""

    name: ProfileModeName = "exact"

    def profile(self, reference: pd.DataFrame, features: list[FeatureSpec], *, quantile_bins: int,
                workers: int) -> ReferenceProfile:
        """One column at a time so memory stays at the data plus a column's copies
        (`workers` columns at a time in threads when > 1)."""
        if not features:
            raise ValueError("profile_reference: expected at least one FeatureSpec in features")
        missing = [f.name for f in features if f.name not in reference.columns]
        if missing:
            raise ValueError(
                f"profile_reference: reference has no column(s) {missing}; it has {list(reference.columns)[:20]}"
            )
        copies = reference.columns.value_counts()
        twice = [f"{f.name!r} {copies[f.name]} times" for f in features if copies[f.name] > 1]
        if twice:  # which copy is the feature nobody can say
            raise ValueError(f"profile_reference: reference has column {', '.join(twice)}; expected each once")
        if quantile_bins < 2:
            raise ValueError(f"profile_reference: quantile_bins must be >= 2, got {quantile_bins}")
        if workers < 1:
            raise ValueError(f"profile_reference: workers must be >= 1, got {workers}")
        series = {f.name: reference[f.name] for f in features}  # on this thread: see compare()

        def one(f: FeatureSpec) -> NumericProfile | CategoricalProfile:
            s = series[f.name]
            return profile_numeric(s, quantile_bins) if f.type == "numeric" else profile_categorical(s)

        columns = dict(zip([f.name for f in features], in_threads(one, features, workers), strict=True))
        return ReferenceProfile(
            features=list(features), n_rows=len(reference), columns=columns, quantile_bins=quantile_bins
        )

    def numeric_statistics(self, ref: NumericProfile, cur_sorted: np.ndarray,
                           pvalues: PValueMode, *,
                           exact_below: int = AUTO_EXACT_BELOW) -> tuple[dict[str, float], str]:
        """Statistics of a non-empty current window against a non-empty sorted reference."""
        assert ref.sorted_values is not None, "an exact-mode profile keeps its sorted values"
        if ref.distinct is not None and ref.distinct_counts is not None:
            # Low-cardinality reference: everything comes from counts on the distinct values,
            # which PSI/JS need anyway (a merge would walk long runs of ties for nothing).
            keys, r_counts, c_counts = aligned_counts(ref.distinct, ref.distinct_counts, *sorted_runs(cur_sorted))
            ms = count_stats(keys, r_counts, c_counts)
            r, c = r_counts / r_counts.sum(), c_counts / len(cur_sorted)
        else:
            ms = merge_stats(ref.sorted_values, cur_sorted)
            r, c = binned_shares(ref, cur_sorted)
        p, method = ks_pvalue(ms.ks, ref.sorted_values, cur_sorted, pvalues, exact_below)
        return {
            "ks": ms.ks,
            "ks_pvalue": p,
            "wasserstein": wasserstein_norm(ms.wasserstein_raw, ref.std),
            "psi": psi(r, c),
            "js": jensen_shannon(r, c),
        }, method
