"""Score a current window against a stored reference profile: plain numeric columns as one block
(block.py), every other column one at a time."""
from __future__ import annotations

import numpy as np
import pandas as pd

from detectors.drift.block import numeric_block
from detectors.drift.categorical import align, categorical_statistics, moved_categories
from detectors.drift.columns import count_column_categories, numeric_column
from detectors.drift.feature_drift import FeatureDrift, base_quality
from detectors.drift.modes import ProfileMode, mode_named
from detectors.drift.numeric import AUTO_EXACT_BELOW, PValueMode
from detectors.drift.profile import CategoricalProfile, FeatureSpec, NumericProfile, ReferenceProfile
from detectors.drift.threads import in_threads

NUMERIC_STATISTICS = ("ks", "ks_pvalue", "wasserstein", "psi", "js")
CATEGORICAL_STATISTICS = ("chi2", "chi2_pvalue", "js", "psi")
MAX_LISTED_CATEGORIES = 20
MAX_CATEGORY_CHARS = 100  # of a new category's name as findings list it


def compare(
    profile: ReferenceProfile,
    current: pd.DataFrame,
    *,
    min_samples: int = 100,
    pvalues: PValueMode = "auto",
    workers: int = 1,
    exact_below: int = AUTO_EXACT_BELOW,
) -> list[FeatureDrift]:
    """Every statistic for every profiled feature on the current window.

    Never raises on bad data: a missing column, a column of strings where numbers were
    expected, NaN or inf are reported in `quality` and the statistics use what is usable.
    `workers` > 1 scores that many columns at a time in threads (sorting, hashing and
    the compiled kernels release the GIL); results and their order do not change, only
    the wall time and the peak memory (one column's copies per worker). With
    pvalues="auto", KS p-values are scipy-exact only for columns with fewer than
    `exact_below` rows on a side (where a verdict is gated on them), asymptotic elsewhere.
    """
    if min_samples < 1:
        raise ValueError(f"compare: min_samples must be >= 1, got {min_samples}")
    if workers < 1:
        raise ValueError(f"compare: workers must be >= 1, got {workers}")
    # Columns are looked up here, on the caller's thread: DataFrame.__getitem__ fills a
    # cache and is not meant to be called from several threads at once.
    # A name twice in the window (Arrow writes such files): which copy is the feature nobody
    # can say, so that feature is reported, not judged, and the others go on.
    copies = current.columns.value_counts()
    series = {spec.name: current[spec.name] for spec in profile.features if copies.get(spec.name, 0) == 1}
    mode = mode_named(profile.mode)
    stacked = numeric_block(profile, series, min_samples=min_samples, pvalues=pvalues, exact_below=exact_below)

    def one(spec: FeatureSpec) -> FeatureDrift:
        if spec.name in stacked:
            return stacked[spec.name]
        ref = profile.columns[spec.name]
        if spec.name not in series:
            fd = _missing_column(spec.name, spec.type, ref, int(copies.get(spec.name, 0)))
            alike = [c for c in current.columns if str(c).strip().casefold() == spec.name.strip().casefold()]
            if fd.quality["column_missing"] and alike:  # "Age" or " age" sent for "age": say so
                fd.quality["similar_column"] = str(alike[0])
            return fd
        if isinstance(ref, NumericProfile):
            return compare_numeric(spec.name, ref, series[spec.name], min_samples, pvalues, mode, exact_below)
        return compare_categorical(spec.name, ref, series[spec.name], min_samples)

    return in_threads(one, profile.features, workers)


def _missing_column(name: str, kind: str, ref: NumericProfile | CategoricalProfile, copies: int = 0) -> FeatureDrift:
    """No single column to read: none (`copies` 0) or several of that name."""
    keys = NUMERIC_STATISTICS if kind == "numeric" else CATEGORICAL_STATISTICS
    return FeatureDrift(
        feature=name,
        type=kind,
        n_reference=ref.n,
        n_current=0,
        enough_data=False,
        statistics={k: float("nan") for k in keys},
        quality={
            "column_missing": copies == 0,
            "column_copies": copies,
            "missing_rate_reference": ref.counts.missing_rate,
        },
        pvalue_method="none",
    )


def compare_numeric(
    name: str, ref: NumericProfile, series: pd.Series, min_samples: int, pvalues: PValueMode, mode: ProfileMode,
    exact_below: int = AUTO_EXACT_BELOW,
) -> FeatureDrift:
    col = numeric_column(series)
    counts = col.counts
    cur_sorted = np.sort(col.values)
    del col  # keep one copy of the column alive, not two
    quality = base_quality(ref.counts, counts)
    n_cur = len(cur_sorted)
    if n_cur and ref.n:
        below = int(np.searchsorted(cur_sorted, ref.minimum, side="left"))
        above = n_cur - int(np.searchsorted(cur_sorted, ref.maximum, side="right"))
        quality["out_of_range_share"] = (below + above) / n_cur
        quality["current_min"] = float(cur_sorted[0])
        quality["current_max"] = float(cur_sorted[-1])
    else:
        quality["out_of_range_share"] = float("nan")
    quality["reference_min"] = ref.minimum
    quality["reference_max"] = ref.maximum
    quality["mean_reference"] = ref.mean
    quality["mean_current"] = float(np.mean(cur_sorted, dtype=np.float64)) if n_cur else float("nan")
    statistics, method = numeric_statistics(ref, cur_sorted, pvalues, mode, exact_below)
    return FeatureDrift(
        feature=name,
        type="numeric",
        n_reference=ref.n,
        n_current=n_cur,
        enough_data=n_cur >= min_samples and ref.n >= min_samples,
        statistics=statistics,
        quality=quality,
        pvalue_method=method,
    )


def numeric_statistics(
    ref: NumericProfile, cur_sorted: np.ndarray, pvalues: PValueMode, mode: ProfileMode,
    exact_below: int = AUTO_EXACT_BELOW,
) -> tuple[dict[str, float], str]:
    if len(cur_sorted) == 0 or ref.n == 0:
        return {k: float("nan") for k in NUMERIC_STATISTICS}, "none"
    return mode.numeric_statistics(ref, cur_sorted, pvalues, exact_below=exact_below)


def compare_categorical(name: str, ref: CategoricalProfile, series: pd.Series, min_samples: int) -> FeatureDrift:
    cats, cat_counts, counts = count_column_categories(series)
    aligned = align(ref.categories, ref.category_counts, cats, cat_counts)
    quality = base_quality(ref.counts, counts)
    n_cur = int(aligned.current.sum())
    if aligned.n_new:
        new_counts = aligned.current[-aligned.n_new :]
        order = np.argsort(-new_counts, kind="stable")[:MAX_LISTED_CATEGORIES]
        new_names = aligned.categories[-aligned.n_new :]
        listed: dict[str, int] = {}  # names clipped: a posted megabyte is not copied into every finding
        for i in order:
            label = str(new_names[i])
            label = label if len(label) <= MAX_CATEGORY_CHARS else label[:MAX_CATEGORY_CHARS] + "..."
            listed[label] = listed.get(label, 0) + int(new_counts[i])
        quality["new_categories"] = listed
        quality["new_category_count"] = aligned.n_new
        quality["new_category_share"] = float(new_counts.sum() / n_cur) if n_cur else 0.0
    else:
        quality["new_categories"] = {}
        quality["new_category_count"] = 0
        quality["new_category_share"] = 0.0
    quality["moved_categories"] = moved_categories(aligned, MAX_CATEGORY_CHARS)
    return FeatureDrift(
        feature=name,
        type="categorical",
        n_reference=ref.n,
        n_current=n_cur,
        enough_data=n_cur >= min_samples and ref.n >= min_samples,
        statistics=categorical_statistics(aligned),
        quality=quality,
        pvalue_method="exact" if n_cur and ref.n else "none",
        reference_counts=ref.category_counts,
    )
