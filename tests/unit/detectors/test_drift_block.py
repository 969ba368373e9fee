"""Numeric columns scored as one 2-D block give the per-column path's numbers, bit for bit."""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from detectors.drift import FeatureSpec, ReferenceProfile, compare, profile_reference
from detectors.drift import block as block_module


def _frame(rng: np.random.Generator, rows: int, shift: float) -> pd.DataFrame:
    """Columns of every kind the block takes or leaves: float64, float32, integers, a
    float64 column exact in float32, ties, empty bins, NaN and inf, low cardinality, text."""
    return pd.DataFrame({
        "normal": rng.normal(shift, 1, rows),
        "narrow": rng.normal(shift, 1, rows).astype(np.float32),
        "rounded": np.round(rng.exponential(1 + shift, rows), 1),
        "exact32": rng.integers(-1000, 1000, rows).astype(np.float64) / 4,
        "ints": rng.integers(0, 500 + int(100 * shift), rows),
        "lumpy": np.where(rng.random(rows) < 0.7, 0.0, rng.normal(5 + shift, 1, rows)),
        "outside": rng.normal(10 * shift, 1, rows),
        "holes": np.where(rng.random(rows) < 0.05, np.nan, rng.normal(shift, 1, rows)),
        "infinite": np.where(rng.random(rows) < 0.01, np.inf, rng.normal(shift, 1, rows)),
        "few": rng.integers(0, 4, rows).astype(float),
        "text": rng.choice(["a", "b", "c"], rows),
    })


FEATURES = [FeatureSpec(n) for n in ("normal", "narrow", "rounded", "exact32", "ints", "lumpy", "outside", "holes",
                                     "infinite", "few")] + [FeatureSpec("text", "categorical")]


def _per_column(monkeypatch: pytest.MonkeyPatch, profile: ReferenceProfile, window: pd.DataFrame,
                **kwargs: object) -> list[object]:
    with monkeypatch.context() as m:
        m.setattr(block_module, "numeric_block", lambda *a, **k: {})
        return compare(profile, window, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("ref_rows,cur_rows", [(5000, 5000), (5000, 3000), (800, 6000), (300, 200)])
@pytest.mark.parametrize("pvalues", ["auto", "exact"])
def test_the_block_gives_every_statistic_and_quality_figure_of_the_per_column_path(monkeypatch, ref_rows, cur_rows,
                                                                                   pvalues):
    rng = np.random.default_rng(ref_rows + cur_rows)
    profile = ReferenceProfile.from_bytes(profile_reference(_frame(rng, ref_rows, 0.0), FEATURES).to_bytes())
    for shift in (0.0, 0.05, 0.5):
        window = _frame(rng, cur_rows, shift)
        stacked = block_module.numeric_block(profile, {c: window[c] for c in window.columns}, min_samples=100,
                                             pvalues=pvalues)
        # the plain numeric columns go through the block; NaN, inf, few values and text do not
        assert sorted(stacked) == ["exact32", "ints", "lumpy", "narrow", "normal", "outside", "rounded"]
        fast = compare(profile, window, pvalues=pvalues)
        slow = _per_column(monkeypatch, profile, window, pvalues=pvalues)
        for a, b in zip(fast, slow, strict=True):
            da, db = dataclasses.asdict(a), dataclasses.asdict(b)
            # NaN != NaN: compare the printed values, which keep every bit of a float
            assert repr(da) == repr(db), a.feature


def test_a_window_with_no_stackable_pair_is_scored_column_by_column():
    rng = np.random.default_rng(1)
    profile = profile_reference(_frame(rng, 500, 0.0), FEATURES)
    window = _frame(rng, 500, 0.1)[["normal", "few", "text"]]
    assert block_module.numeric_block(profile, {c: window[c] for c in window.columns}, min_samples=100,
                                      pvalues="auto") == {}
    assert [fd.feature for fd in compare(profile, window)] == [f.name for f in FEATURES]
