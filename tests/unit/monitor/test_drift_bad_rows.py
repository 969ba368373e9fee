"""Issue 12: one bad row can never stop a detector.

On the old code a posted `"user_age": 1` followed by 400 zeros was stored, and every later
cycle's drift step failed with `OverflowError: int too large to convert to float` (pandas
could not infer that column's type when the posted rows became a frame, nor
`pd.to_numeric` convert it), so prediction drift became `no_data` for as long as the row
stayed in the window. Rows already in the store, and sample files (which the API never
validates), can still hold such values: drift now runs on the finite values and a
data-quality finding says how many were dropped.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from detectors.drift.columns import numeric_column, to_floats
from detectors.records import FindingKind
from monitor.sources.samples import records_frame
from tests.helpers_vigil import (
    MODEL,
    T0,
    vigil_on_files,
    write_reference,
)

HUGE = 10**400  # JSON `1` followed by 400 zeros, as Python's json module reads it


def test_integers_beyond_the_float_range_are_counted_non_finite_not_raised():
    col = numeric_column(pd.Series([HUGE, 1.5, -HUGE, "abc", None, 2.5], dtype=object))
    assert sorted(col.values.tolist()) == [1.5, 2.5]
    assert (col.counts.n_nonfinite, col.counts.n_type_mismatch, col.counts.n_missing) == (2, 1, 1)
    v = to_floats(pd.Series([HUGE, 3, None], dtype=object))
    assert v[0] == np.inf and v[1] == 3.0 and np.isnan(v[2])


def test_posted_rows_with_such_an_integer_still_make_a_frame():
    df = records_frame([(T0, {"x": HUGE, "d": "ios", "y": 0.5}), (T0 + 1, {"x": 2, "d": "web", "y": 0.7})])
    assert df["x"].dtype == object and df["y"].dtype == np.float64
    assert df["_ts"].tolist() == [T0, T0 + 1]


def test_drift_runs_on_the_finite_values_and_says_how_many_were_dropped(tmp_path):
    rng = np.random.default_rng(0)
    write_reference(tmp_path, rng)
    # A sample file (never validated by the API) with infinities and NaN in the prediction ...
    n = 400
    pd.DataFrame({"timestamp": T0 - 600 + np.arange(n), "user_age": rng.normal(40, 10, n),
                  "score": np.r_[[np.inf, -np.inf, np.nan], rng.uniform(0.5, 1.5, n - 3)]}).to_parquet(
        tmp_path / "samples" / "a.parquet")
    vigil = vigil_on_files(tmp_path)
    # ... and the row, stored before the API refused it.
    vigil.store.add_samples(MODEL, [(T0 - 30, {"user_age": HUGE, "score": 1.2})])

    report = vigil.run_cycle(MODEL, T0)

    assert not report.blind, report.blind
    assert not [f for f in report.findings if f.kind == FindingKind.NO_DATA]
    (pred,) = [f for f in report.findings if f.kind == FindingKind.PREDICTION_DRIFT]
    assert pred.entity == "score" and pred.evidence["n_current"] == n + 1 - 3  # two infinities and a NaN left out
    quality = {(f.entity, f.statistic): f for f in report.findings if f.kind == FindingKind.DATA_QUALITY}
    assert quality[("user_age", "nonfinite_share")].message.startswith("1 infinite values on user_age")
    assert quality[("score", "nonfinite_share")].message.startswith("2 infinite values on score")
