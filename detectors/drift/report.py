"""The human drift report: the installed Evidently's own DataDriftPreset, on a bounded sample.

Vigil's verdicts come from its own exact engine; this page is for the person who opens
the incident and wants Evidently's familiar plots. Evidently builds plot widgets for
every column and copies the data per column, so both sides are sampled to `max_rows`
first (seeded, so the same incident renders the same page).
"""
from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from detectors.drift.columns import category_label, missing_categories, to_floats

log = logging.getLogger(__name__)
EVIDENTLY_NBINS = 10  # the bins Evidently's per-column histograms take (its default nbinsx)


def _sample(df: pd.DataFrame, max_rows: int, seed: int) -> pd.DataFrame:
    if len(df) <= max_rows:
        return df
    return df.sample(n=max_rows, random_state=seed).sort_index()


def _is_numeric(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype)


def _usable(ref: pd.Series, cur: pd.Series) -> bool:
    """Evidently raises on a column with no finite value on either side, and on one it cannot
    histogram (see `_drawable`): the whole page failed for that one column."""
    for s in (ref, cur):
        if _is_numeric(s):
            if not s.replace([float("inf"), float("-inf")], float("nan")).notna().any() or not _drawable(s):
                return False
        elif not s.notna().any():
            return False
    return True


def _drawable(s: pd.Series) -> bool:
    """Whether numpy can cut the side into Evidently's histogram bins: a constant side is cut
    around its value into bins of 0.1, finer than a float can tell apart beyond about 1e15
    (an epoch in microseconds or nanoseconds), and numpy raises 'Too many bins'."""
    v = s.to_numpy(dtype=np.float64, na_value=np.nan)
    try:
        np.histogram(v[np.isfinite(v)], bins=EVIDENTLY_NBINS)
    except ValueError:
        return False
    return True


def _time_like(s: pd.Series) -> bool:
    """Datetimes or durations, also as objects (zones mixed across files, parquet dates)."""
    return s.dtype.kind in "mM" or (s.dtype == object and pd.api.types.infer_dtype(s, skipna=True)
                                    in ("datetime", "date"))


def _seconds(s: pd.Series) -> np.ndarray:
    """Times and durations as seconds: the drift numbers do not change with the unit (each is
    scale-free), and a constant batch date at nanoseconds (1.8e18) cannot be histogrammed."""
    return to_floats(s) / 1e9


def _labels(s: pd.Series) -> pd.Series:
    """Category labels as the engine spells them; missing stays missing, and so is ""."""
    return s.map(category_label, na_action="ignore").astype("string").mask(missing_categories(s))


def render_drift_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    columns: list[str],
    *,
    max_rows: int = 5000,
    seed: int = 0,
    categorical: list[str] | None = None,
    statistic: str | None = None,
    threshold: float | None = None,
) -> str:
    """Standalone HTML of Evidently's DataDriftPreset over `columns`.

    Columns missing on either side or without a usable value are left out (and logged);
    types follow the reference dtypes unless listed in `categorical`. `statistic` and
    `threshold`: the verdict's (see `_preset`); without them Evidently picks its own tests.
    """
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    if max_rows < 1:
        raise ValueError(f"render_drift_report: max_rows must be >= 1, got {max_rows}")
    present = [c for c in columns if c in reference.columns and c in current.columns]
    cat = set(categorical or [])
    ref = _sample(reference[present], max_rows, seed).copy()
    cur = _sample(current[present], max_rows, seed + 1).copy()
    for c in present:
        if c not in cat and (_time_like(reference[c]) or _time_like(cur[c])):
            # Times and durations are numbers to the engine (here seconds); as text every timestamp was a
            # category of its own, none in the reference, and the page said 100% drift.
            ref[c], cur[c] = _seconds(ref[c]), _seconds(cur[c])
        elif c not in cat and _is_numeric(reference[c]) and not _is_numeric(cur[c]):
            # Posted samples can hold objects (an integer beyond the float range), which
            # Evidently cannot count: as floats, such a value is an infinity it reports.
            cur[c] = to_floats(cur[c])
    usable = [c for c in present if _usable(ref[c], cur[c])]
    dropped = sorted(set(columns) - set(usable))
    if dropped:
        log.warning("drift report leaves out columns", extra={"columns": dropped})
    if not usable:
        raise ValueError(
            f"render_drift_report: none of the columns {columns[:10]} is present with usable values "
            "in both reference and current"
        )
    numerical = [c for c in usable if c not in cat and _is_numeric(ref[c])]
    categorical_cols = [c for c in usable if c not in numerical]
    ref, cur = ref[usable].copy(), cur[usable].copy()
    for c in categorical_cols:
        # Evidently compares category labels; spell them as the engine counts them
        # (category_label): astype("string") wrote 3.0 for a column pandas made float (one
        # missing value), every category looked new and the page said drift where Vigil saw none.
        ref[c] = _labels(ref[c])
        cur[c] = _labels(cur[c])
    definition = DataDefinition(numerical_columns=numerical, categorical_columns=categorical_cols)
    snapshot = Report([_preset(DataDriftPreset, usable, statistic, threshold)]).run(
        Dataset.from_pandas(cur, data_definition=definition),
        Dataset.from_pandas(ref, data_definition=definition),
    )
    return snapshot.get_html_str(as_iframe=False)


# Vigil's statistics by Evidently's names (numeric, categorical); a categorical feature is
# judged by Jensen-Shannon where the statistic needs an order (decision.CATEGORICAL_FALLBACK).
# Evidently's "ks" is a p-value test, not the KS statistic against a threshold: left to it.
_EVIDENTLY_TESTS = {"psi": ("psi", "psi"), "wasserstein": ("wasserstein", "jensenshannon"),
                    "js": ("jensenshannon", "jensenshannon"), "ks": (None, "jensenshannon")}


def _preset(preset: Any, columns: list[str], statistic: str | None, threshold: float | None) -> Any:
    """The preset judging each column by the verdict's statistic and threshold. Left to choose,
    Evidently runs a KS p-value test on a reference of up to 1,000 rows, and its page said
    "drift" on a feature the alert had judged under its threshold (or the reverse)."""
    if statistic is None or statistic not in _EVIDENTLY_TESTS:
        return preset(columns=columns)
    num, cat = _EVIDENTLY_TESTS[statistic]
    return preset(columns=columns, num_method=num, cat_method=cat,
                  num_threshold=threshold if num is not None else None, cat_threshold=threshold)
