"""Vigil's statistics equal Evidently's own stat tests (installed version) to 1e-9.

For every test both implement: KS statistic and p-value, normalised Wasserstein,
chi-square p-value, PSI and Jensen-Shannon (categorical, and numeric under Evidently's
binning), on NannyML's bundled real data sets and on synthetic data with ties,
low-cardinality columns, float32-exact columns, unseen categories and NaN/inf.
"""
from __future__ import annotations

import os
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from detectors.drift import FeatureSpec, compare, profile_reference
from detectors.drift.numeric import evidently_binned_shares, jensen_shannon, psi

ev_ks = pytest.importorskip("evidently.legacy.calculations.stattests.ks_stattest")._ks_stat_test
from evidently.legacy.calculations.stattests.chisquare_stattest import _chi_stat_test  # noqa: E402
from evidently.legacy.calculations.stattests.jensenshannon import _jensenshannon  # noqa: E402
from evidently.legacy.calculations.stattests.psi import _psi  # noqa: E402
from evidently.legacy.calculations.stattests.wasserstein_distance_norm import (  # noqa: E402
    _wasserstein_distance_norm,
)
from evidently.legacy.core import ColumnType  # noqa: E402

TOL = 1e-9
os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")  # NannyML phones home otherwise
NUM, CAT = ColumnType.Numerical, ColumnType.Categorical


def _clean(s: pd.Series) -> pd.Series:
    """What Evidently feeds its stat tests: inf -> NaN, NaN dropped."""
    return s.replace([np.inf, -np.inf], np.nan).dropna()


def assert_parity(ref: pd.DataFrame, cur: pd.DataFrame, features: list[FeatureSpec]) -> int:
    profile = profile_reference(ref, features)
    checked = 0
    for fd in compare(profile, cur, pvalues="exact"):
        r, c = _clean(ref[fd.feature]), _clean(cur[fd.feature])
        s = fd.statistics
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if fd.type == "numeric":
                r, c = r.astype(float), c.astype(float)
                assert s["ks"] == pytest.approx(stats.ks_2samp(r, c).statistic, abs=TOL), fd.feature
                assert s["ks_pvalue"] == pytest.approx(ev_ks(r, c, NUM, 0.05)[0], abs=TOL), fd.feature
                w = _wasserstein_distance_norm(r, c, NUM, 0.1)[0]
                assert s["wasserstein"] == pytest.approx(w, abs=TOL, rel=TOL), fd.feature
                rs, cs = evidently_binned_shares(np.sort(r.to_numpy()), np.sort(c.to_numpy()), r.nunique())
                assert psi(rs, cs) == pytest.approx(_psi(r, c, NUM, 0.1)[0], abs=TOL, rel=TOL), fd.feature
                assert jensen_shannon(rs, cs) == pytest.approx(_jensenshannon(r, c, NUM, 0.1)[0], abs=TOL)
                checked += 5
            else:
                r, c = r.astype(str), c.astype(str)
                assert s["chi2_pvalue"] == pytest.approx(_chi_stat_test(r, c, CAT, 0.05)[0], abs=TOL), fd.feature
                assert s["psi"] == pytest.approx(_psi(r, c, CAT, 0.1)[0], abs=TOL, rel=TOL), fd.feature
                assert s["js"] == pytest.approx(_jensenshannon(r, c, CAT, 0.1)[0], abs=TOL), fd.feature
                checked += 3
    return checked


def synthetic(n: int, seed: int, shift: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "gauss": rng.normal(shift, 1, n),
            "heavy": rng.standard_t(2, n) * 100,
            "ties": np.round(rng.exponential(2 + shift, n), 1),  # many ties, > 20 values
            "few": rng.integers(0, 4 + int(shift > 0), n).astype(float),  # low cardinality
            "f32": rng.normal(shift, 3, n).astype(np.float32).astype(np.float64),  # exact in float32
            "const": np.full(n, 5.0),  # zero spread: Wasserstein's 0.001 floor
            "cat": rng.choice(["a", "b", "c", "d"], n, p=[0.4, 0.3, 0.2, 0.1]),
            "codes": rng.integers(0, 30, n),
        }
    )
    df.loc[rng.choice(n, n // 50, replace=False), "gauss"] = np.nan
    df.loc[rng.choice(n, n // 100, replace=False), "heavy"] = np.inf
    return df


SYN_FEATURES = [FeatureSpec(c) for c in ("gauss", "heavy", "ties", "few", "f32", "const")] + [
    FeatureSpec("cat", "categorical"),
    FeatureSpec("codes", "categorical"),
]


@pytest.mark.parametrize(
    "n_ref,n_cur,shift",
    [
        (300, 200, 0.0),  # scipy's exact KS distribution, equal-ish sizes
        (2000, 1000, 0.3),  # exact, unequal sizes
        (9000, 12000, 0.05),  # above 10,000: Smirnov's kstwo.sf branch
    ],
)
def test_synthetic_parity(n_ref, n_cur, shift):
    ref = synthetic(n_ref, 1, 0.0)
    cur = synthetic(n_cur, 2, shift)
    if shift:
        cur.loc[: n_cur // 20, "cat"] = "unseen"  # categories the reference never had
    assert assert_parity(ref, cur, SYN_FEATURES) == 6 * 5 + 2 * 3


def test_car_loan_parity():
    nml = pytest.importorskip("nannyml")
    ref, ana, _ = nml.load_synthetic_car_loan_dataset()
    cur = ana.iloc[25_000:]  # the drifted half of the analysis period
    numeric = ["car_value", "debt_to_income_ratio", "loan_length", "driver_tenure", "y_pred_proba"]
    categorical = ["salary_range", "repaid_loan_on_prev_car", "size_of_downpayment", "y_pred"]
    feats = [FeatureSpec(c) for c in numeric] + [FeatureSpec(c, "categorical") for c in categorical]
    assert assert_parity(ref, cur, feats) == 5 * 5 + 4 * 3


def test_us_census_parity():
    nml = pytest.importorskip("nannyml")
    ref, ana, _ = nml.load_us_census_ma_employment_data()
    cur = ana[ana["year"] == ana["year"].max()]
    numeric = ["AGEP", "predicted_probability"]
    categorical = ["SCHL", "MAR", "RELP", "DIS", "ESP", "CIT", "MIG", "MIL", "ANC", "SEX", "RAC1P", "prediction"]
    feats = [FeatureSpec(c) for c in numeric] + [FeatureSpec(c, "categorical") for c in categorical]
    assert assert_parity(ref, cur, feats) == 2 * 5 + 12 * 3


def test_reported_numeric_psi_is_on_reference_deciles_not_evidentlys_bins():
    """What the README says: numeric PSI/JS as reported are on reference deciles, so they
    differ from Evidently's (equal-width Sturges bins over both samples), which
    evidently_binned_shares reproduces."""
    rng = np.random.default_rng(0)
    r, c = pd.Series(rng.lognormal(0, 1, 5000)), pd.Series(rng.lognormal(0.1, 1, 5000))
    (fd,) = compare(profile_reference(pd.DataFrame({"x": r}), [FeatureSpec("x")]), pd.DataFrame({"x": c}))
    edges = np.quantile(r, np.arange(1, 10) / 10)
    rs = np.bincount(np.searchsorted(edges, r, side="left"), minlength=10) / len(r)
    cs = np.bincount(np.searchsorted(edges, c, side="left"), minlength=10) / len(c)
    assert fd.statistics["psi"] == pytest.approx(psi(rs, cs), rel=1e-9)
    evidently = _psi(r, c, NUM, 0.1)[0]
    assert abs(fd.statistics["psi"] - evidently) > 0.005
    es = evidently_binned_shares(np.sort(r.to_numpy()), np.sort(c.to_numpy()), r.nunique())
    assert psi(*es) == pytest.approx(evidently, rel=1e-9)
