"""Sketch mode: mergeable reference profiles whose statistics stay within the documented bound."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from detectors.drift import FeatureSpec, ReferenceProfile, compare, profile_reference

sketch = pytest.importorskip("detectors.drift.sketch")

FEATURES = [FeatureSpec("x"), FeatureSpec("heavy"), FeatureSpec("few"), FeatureSpec("c", "categorical")]


def data(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "x": rng.normal(shift, 1, n),
            "heavy": rng.standard_t(3, n) + shift,
            "few": rng.integers(0, 5, n).astype(float),
            "c": rng.choice(["a", "b", "c"], n),
        }
    )


def test_streamed_sketch_profile_stays_within_documented_error_of_exact():
    ref = data(60_000, 1)
    cur = data(5_000, 2, shift=0.1)
    # the reference arrives in three chunks; their profiles merge
    chunks = [sketch.sketch_profile(ref.iloc[i : i + 20_000], FEATURES) for i in range(0, 60_000, 20_000)]
    merged = chunks[0]
    for c in chunks[1:]:
        merged = sketch.merge_profiles(merged, c)
    merged = ReferenceProfile.from_bytes(merged.to_bytes())
    assert merged.mode == "sketch" and merged.n_rows == 60_000
    eps = sketch.rank_error()
    exact = {d.feature: d for d in compare(profile_reference(ref, FEATURES), cur)}
    approx = {d.feature: d for d in compare(merged, cur)}
    for name in ("x", "heavy"):
        e, a = exact[name].statistics, approx[name].statistics
        assert abs(a["ks"] - e["ks"]) <= eps, name
        col = merged.columns[name]
        w_bound = (eps + 1 / sketch.QUANTILE_GRID) * (col.maximum - col.minimum) / col.std
        assert abs(a["wasserstein"] - e["wasserstein"]) <= w_bound, name
        assert abs(a["psi"] - e["psi"]) < 0.01 and abs(a["js"] - e["js"]) < 0.01, name
        assert approx[name].pvalue_method == "sketch"
        # moments and counts are exact after merging
        assert col.mean == pytest.approx(ref[name].mean(), rel=1e-9)
        assert col.std == pytest.approx(ref[name].std(ddof=0), rel=1e-9)
    # low-cardinality and categorical columns are exact in sketch mode
    for name in ("few", "c"):
        e, a = exact[name].statistics, approx[name].statistics
        keys = ["chi2", "chi2_pvalue", "js", "psi"] if name == "c" else ["ks", "wasserstein", "js", "psi"]
        assert {k: a[k] for k in keys} == pytest.approx({k: e[k] for k in keys}, rel=1e-9, abs=1e-12), name


def test_sketch_profile_is_small_whatever_the_stream_length():
    ref = data(200_000, 3)
    exact_bytes = len(profile_reference(ref, FEATURES).to_bytes())
    sketch_bytes = len(sketch.sketch_profile(ref, FEATURES).to_bytes())
    assert sketch_bytes < exact_bytes / 10


def test_merging_needs_sketch_profiles():
    ref = data(1000, 4)
    with pytest.raises(ValueError, match="sketch"):
        sketch.merge_profiles(profile_reference(ref, FEATURES), sketch.sketch_profile(ref, FEATURES))


def test_profile_reference_offers_sketch_mode():
    ref = data(5000, 5)
    p = profile_reference(ref, FEATURES, mode="sketch")
    assert p.mode == "sketch" and p.columns["x"].sorted_values is None
    with pytest.raises(ValueError, match="mode"):
        profile_reference(ref, FEATURES, mode="fast")  # type: ignore[arg-type]
