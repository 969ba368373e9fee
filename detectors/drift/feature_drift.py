"""What `compare` says about one feature in one window, whichever path scored it."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from detectors.drift.columns import ColumnCounts


@dataclass
class FeatureDrift:
    """All statistics of one feature for one window, whether or not it drifted."""

    feature: str
    type: str
    n_reference: int  # usable (finite, typed, present) reference values
    n_current: int  # usable current values
    enough_data: bool
    statistics: dict[str, float]
    quality: dict[str, Any]
    pvalue_method: str = "exact"  # "exact" (scipy-identical), "asymptotic", "sketch" or "none"
    reference_counts: np.ndarray | None = None  # categorical: the reference's counts (its noise, decision.py)


def base_quality(ref: ColumnCounts, cur: ColumnCounts) -> dict[str, Any]:
    return {
        "column_missing": False,
        "missing_rate_reference": ref.missing_rate,
        "missing_rate_current": cur.missing_rate,
        "nonfinite_reference": ref.n_nonfinite,
        "nonfinite_current": cur.n_nonfinite,
        "type_mismatch_current": cur.n_type_mismatch,
        "rows_current": cur.n_rows,
        "rows_reference": ref.n_rows,
    }
