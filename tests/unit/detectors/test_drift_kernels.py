"""The fast paths of the drift engine give the numbers of the slow, obvious ones.

Compiled KS/Wasserstein kernels and the value-count path against scipy and against a
plain numpy merge; pointer
hashing of object columns against pd.factorize; zero-copy profile loading against
np.load, including blobs written the old way; threaded scoring against one thread.
"""
from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from detectors.drift import FeatureSpec, ReferenceProfile, compare, profile_reference
from detectors.drift.columns import OBJECT_IDENTITY_MIN_ROWS, count_column_categories
from detectors.drift.numeric import aligned_counts, count_stats, merge_stats, numpy_merge_stats, sorted_runs


def _samples(rng: np.random.Generator, kind: int, n: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    if kind == 0:  # continuous, shifted
        return rng.normal(size=n), rng.normal(rng.normal() * 0.5, 1, size=m)
    if kind == 1:  # a handful of values: ties everywhere
        return rng.integers(0, 5, n).astype(float), rng.integers(0, 7, m).astype(float)
    if kind == 2:  # many ties, many values
        return np.round(rng.exponential(1, n), 1), np.round(rng.exponential(1.3, m), 1)
    if kind == 3:  # constant, equal or disjoint
        return np.full(n, 2.0), np.full(m, 2.0 + rng.integers(0, 2))
    if kind == 4:  # disjoint ranges
        return rng.normal(size=n), rng.normal(size=m) + 100
    return rng.normal(size=n).astype(np.float32), np.round(rng.normal(size=m), 1).astype(np.float32)


def test_kernels_equal_scipy_on_ties_unequal_sizes_and_float32():
    rng = np.random.default_rng(0)
    for t in range(1200):
        n, m = int(rng.integers(1, 400)), int(rng.integers(1, 400))
        if t % 7 == 0:
            m = n  # the equal-size path
        r, c = _samples(rng, t % 6, n, m)
        r, c = np.sort(r), np.sort(c)
        ms = merge_stats(r, c)
        assert ms.ks == pytest.approx(stats.ks_2samp(r, c).statistic, abs=1e-15), (t, n, m)
        w = stats.wasserstein_distance(r.astype(float), c.astype(float))
        assert ms.wasserstein_raw == pytest.approx(w, rel=1e-12, abs=1e-12), (t, n, m)
        # the counts path (low-cardinality references) reads the same numbers off value counts
        counted = count_stats(*aligned_counts(*sorted_runs(r), *sorted_runs(c)))
        assert counted.ks == pytest.approx(ms.ks, abs=1e-15), (t, n, m)
        assert counted.wasserstein_raw == pytest.approx(w, rel=1e-12, abs=1e-12), (t, n, m)


@pytest.mark.parametrize("n,m", [(60_000, 60_000), (90_000, 7_000), (3_000, 80_000)])
def test_kernels_equal_the_numpy_merge_on_long_columns(n, m):
    rng = np.random.default_rng(n + m)
    for kind in range(6):
        r, c = (np.sort(x) for x in _samples(rng, kind, n, m))
        fast, slow = merge_stats(r, c), numpy_merge_stats(r, c)
        assert fast.ks == pytest.approx(slow.ks, abs=1e-15), kind
        assert fast.wasserstein_raw == pytest.approx(slow.wasserstein_raw, rel=1e-12, abs=1e-12), kind


def _plain_counts(s: pd.Series) -> dict[str, int]:
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    out: dict[str, int] = {}
    for u, k in zip(uniques, np.bincount(codes[codes >= 0], minlength=len(uniques)), strict=True):
        lab = str(int(u)) if isinstance(u, float) and u.is_integer() else str(u)
        out[lab] = out.get(lab, 0) + int(k)
    return out


def test_object_columns_count_the_same_by_pointer_as_by_value():
    rng = np.random.default_rng(1)
    n = 3 * OBJECT_IDENTITY_MIN_ROWS
    shared = np.array(["a", "b", "c", 3, 3.0, None, np.nan], dtype=object)[rng.integers(0, 7, n)]
    # equal strings held by different objects must merge into one category
    shared[::5] = ["".join(["b"]) for _ in range(len(shared[::5]))]
    own = np.array([f"x{v}" for v in rng.integers(0, 50, n)], dtype=object)  # one object per row
    # more distinct objects than the compiled count takes, far fewer than rows
    pool = np.array([f"y{v % 3000}" for v in range(6000)], dtype=object)
    many = pool[rng.integers(0, 6000, 40_000)]
    for values in (shared, own, many):
        n = len(values)
        s = pd.Series(values)
        labels, counts, col = count_column_categories(s)
        assert dict(zip(labels, counts.tolist(), strict=True)) == _plain_counts(s)
        assert col.n_missing == int(s.isna().sum())
        assert counts.sum() + col.n_missing == n


def _profile_frame(rng: np.random.Generator, n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "k": rng.integers(0, 9, n).astype(np.float32),
            "c": np.array(["p", "q", "r"], dtype=object)[rng.integers(0, 3, n)],
        }
    )


FEATS = [FeatureSpec("x"), FeatureSpec("k"), FeatureSpec("c", "categorical")]


def test_profile_loads_in_place_and_reads_blobs_written_by_np_savez():
    rng = np.random.default_rng(2)
    ref, cur = _profile_frame(rng, 20_000), _profile_frame(rng, 5_000)
    profile = profile_reference(ref, FEATS)
    blob = profile.to_bytes()
    loaded = ReferenceProfile.from_bytes(blob)
    x = loaded.columns["x"].sorted_values
    assert not x.flags.owndata and not x.flags.writeable  # a view of the blob, not a copy
    expected = [d.statistics for d in compare(profile, cur)]
    assert [d.statistics for d in compare(loaded, cur)] == expected
    # blobs whose arrays were written by np.savez / np.savez_compressed still load
    n_head = int.from_bytes(blob[:8], "little")
    npz = np.load(io.BytesIO(blob[8 + n_head :]))
    arrays = {k: npz[k] for k in npz.files}
    for save in (np.savez, np.savez_compressed):
        buf = io.BytesIO()
        save(buf, **arrays)
        old = ReferenceProfile.from_bytes(blob[: 8 + n_head] + buf.getvalue())
        assert [d.statistics for d in compare(old, cur)] == expected


def test_a_profiles_zip_directory_is_read_in_place_as_zipfile_reads_it():
    import zipfile

    from detectors.drift import storage

    rng = np.random.default_rng(5)
    profile = profile_reference(_profile_frame(rng, 3_000), FEATS)
    blob = profile.to_bytes()
    n_head = int.from_bytes(blob[:8], "little")
    archive = memoryview(blob)[8 + n_head :]  # its offsets count from the blob's start, header included
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        expected = [(i.filename, i.compress_type, i.header_offset, i.file_size) for i in zf.infolist()]
    assert storage._plain_members(archive) == expected and len(expected) > 5
    # An archive not quite as write_npz makes it (a comment here) goes through zipfile, same arrays.
    with_comment = bytearray(archive)
    with_comment[-2:] = (4).to_bytes(2, "little")
    with_comment += b"note"
    assert storage._plain_members(memoryview(bytes(with_comment))) is None
    again = ReferenceProfile.from_bytes(blob[: 8 + n_head] + bytes(with_comment))
    np.testing.assert_array_equal(again.columns["x"].sorted_values, profile.columns["x"].sorted_values)


def test_threads_change_nothing_but_the_wall_time():
    rng = np.random.default_rng(3)
    ref, cur = _profile_frame(rng, 30_000), _profile_frame(rng, 10_000).drop(columns=["k"])
    one = compare(profile_reference(ref, FEATS), cur)
    two = compare(profile_reference(ref, FEATS, workers=2), cur, workers=2)
    # repr: NaN statistics of the missing column compare equal as text, not as floats
    assert repr([(d.feature, d.statistics, d.quality) for d in one]) == repr(
        [(d.feature, d.statistics, d.quality) for d in two]
    )
    with pytest.raises(ValueError, match="workers"):
        compare(profile_reference(ref, FEATS), cur, workers=0)


def test_auto_pvalues_are_scipy_exact_where_the_verdict_is_gated_on_them():
    """pvalues="auto": a column with fewer than `exact_below` rows on a side (gated by its
    p-value) gets scipy's exact p-value; a large one the Kolmogorov limit, said so."""
    rng = np.random.default_rng(3)
    ref = pd.DataFrame({"x": rng.normal(size=5000)})
    profile = profile_reference(ref, [FeatureSpec("x")])
    small = pd.DataFrame({"x": rng.normal(0.05, 1, size=700)})
    large = pd.DataFrame({"x": rng.normal(0.05, 1, size=4987)})
    (gated,) = compare(profile, small, exact_below=1000)
    assert gated.pvalue_method == "exact"
    assert gated.statistics["ks_pvalue"] == stats.ks_2samp(ref["x"], small["x"]).pvalue
    (big,) = compare(profile, large, exact_below=1000)
    exact = stats.ks_2samp(ref["x"], large["x"]).pvalue
    assert big.pvalue_method == "asymptotic"
    assert big.statistics["ks_pvalue"] == pytest.approx(exact, rel=0.05)
    (forced,) = compare(profile, large, pvalues="exact")
    assert forced.pvalue_method == "exact" and forced.statistics["ks_pvalue"] == exact
