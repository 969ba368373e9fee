"""What a cycle says about drift it could not judge, and what it judged against."""
from __future__ import annotations

import numpy as np
import pandas as pd

from detectors.records import FindingKind
from tests.helpers_vigil import MODEL, T0, vigil_on_files, write_reference


def test_a_quiet_hour_is_one_not_assessed_finding_and_one_blind_line(tmp_path):
    """40 rows over the feature and the prediction: one warning that says how many rows came and
    how many are needed (one per feature before: 50 features, 50 lines in Slack and the status)."""
    rng = np.random.default_rng(1)
    write_reference(tmp_path, rng)
    n = 40
    pd.DataFrame({"timestamp": T0 - 600 + np.arange(n, dtype=float), "user_age": rng.normal(40, 10, n),
                  "score": rng.uniform(0, 1, n)}).to_parquet(tmp_path / "samples" / "a.parquet")
    vigil = vigil_on_files(tmp_path)

    report = vigil.run_cycle(MODEL, T0)

    (gap,) = [f for f in report.findings if f.kind == FindingKind.NO_DATA]
    assert gap.entity == "drift" and "40 usable current rows < 100 required" in gap.message
    assert "drift not assessed on 2 features (user_age, score)" in gap.message
    assert [b for b in report.blind if b.startswith("drift")] == [
        "drift: not enough data on 2 features (40 current rows < 100)"]
    assert report.severity is not None  # not assessed is never an all clear


def test_a_drift_finding_says_which_reference_it_was_judged_against(tmp_path):
    """Training file or rolling production samples: the finding said neither, and a rolling
    model's owner could not tell whether "mean 60 vs 40 in the reference" meant training data."""
    rng = np.random.default_rng(2)
    write_reference(tmp_path, rng)
    n = 400
    pd.DataFrame({"timestamp": T0 - 600 + np.arange(n, dtype=float), "user_age": rng.normal(60, 10, n),
                  "score": rng.uniform(0, 1, n)}).to_parquet(tmp_path / "samples" / "a.parquet")

    report = vigil_on_files(tmp_path).run_cycle(MODEL, T0)

    (f,) = [f for f in report.findings if f.kind == FindingKind.FEATURE_DRIFT]
    assert f.message.endswith("; reference: training file train.parquet"), f.message
    assert f.evidence["reference"] == {"kind": "training", "source": str(tmp_path / "train.parquet"),
                                       "name": "training file train.parquet"}


def test_a_rolling_reference_is_named_as_production_samples():
    from detectors.records import Finding
    from monitor.cycle.detect_drift import name_reference

    f = Finding(kind=FindingKind.FEATURE_DRIFT, entity="x", value=0.3, threshold=0.1, window_start=0.0,
                window_end=1.0, onset=0.0, score=0.75, model=MODEL, statistic="psi", message="psi 0.30 > 0.10 on x")
    name_reference([f], "rolling 7 d of production samples")
    assert f.message == "psi 0.30 > 0.10 on x; reference: rolling 7 d of production samples"
    assert f.evidence["reference"]["kind"] == "rolling"
