"""Exact or sketch: the one place where the profiling mode is chosen.

A profile is built in one mode (`ReferenceProfile.mode`) and compared in the same mode:
`mode_named` picks the strategy once, for profiling (`profile_reference`) and for
comparing (`compare`), so no function below asks "is this a sketch?" again.

- exact (exact.py): every finite value kept sorted; scipy-identical statistics.
- sketch (sketch.py): mergeable KLL sketches for unbounded streams; bounded error.
"""
from __future__ import annotations

from typing import Protocol

import numpy as np
import pandas as pd

from detectors.drift.exact import ExactMode
from detectors.drift.numeric import AUTO_EXACT_BELOW, PValueMode
from detectors.drift.profile import (
    DEFAULT_QUANTILE_BINS,
    FeatureSpec,
    NumericProfile,
    ProfileModeName,
    ReferenceProfile,
)
from detectors.drift.sketch import SketchMode


class ProfileMode(Protocol):
    """How numeric columns are profiled and compared (categorical counts are exact in both)."""

    name: ProfileModeName

    def profile(self, reference: pd.DataFrame, features: list[FeatureSpec], *, quantile_bins: int,
                workers: int) -> ReferenceProfile: ...

    def numeric_statistics(self, ref: NumericProfile, cur_sorted: np.ndarray,
                           pvalues: PValueMode, *,
                           exact_below: int = AUTO_EXACT_BELOW) -> tuple[dict[str, float], str]: ...


MODES: dict[str, ProfileMode] = {"exact": ExactMode(), "sketch": SketchMode()}


def mode_named(name: str) -> ProfileMode:
    try:
        return MODES[name]
    except KeyError:
        raise ValueError(f"profile_reference: mode must be 'exact' or 'sketch', got {name!r}") from None


def profile_reference(
    reference: pd.DataFrame,
    features: list[FeatureSpec],
    *,
    quantile_bins: int = DEFAULT_QUANTILE_BINS,
    mode: ProfileModeName = "exact",
    workers: int = 1,
) -> ReferenceProfile:
    """Profile the reference once per model version; one column at a time so memory stays
    at the data plus a column's copies (`workers` columns at a time in threads when
    > 1). mode="sketch" keeps mergeable KLL sketches instead of sorted values (see
    detectors/drift/sketch.py for the error bound)."""
    return mode_named(mode).profile(reference, features, quantile_bins=quantile_bins, workers=workers)
