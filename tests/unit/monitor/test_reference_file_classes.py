"""A classifier's labelled reference file must hold classes, as its label files must: the
probability column named as `label_column` (0.93, 0.12, ...) read every label as the
negative class, and every window was judged against that garbage reference."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from tests.helpers_vigil import T0, make_config, make_vigil, model_config

H = 3600.0


def _vigil(tmp_path: Path, labels: np.ndarray):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(5)
    n = 600
    pred = rng.integers(0, 2, n)
    (tmp_path / "samples").mkdir()
    pd.DataFrame({"timestamp": T0 - 4 * H + np.arange(n) * 10.0, "prediction_id": [f"p{i}" for i in range(n)],
                  "churn_pred": pred, "model_version": "1"}).to_csv(tmp_path / "samples" / "p.csv", index=False)
    pd.DataFrame({"churn_pred": pred[: len(labels)], "label": labels}).to_csv(tmp_path / "reference.csv",
                                                                               index=False)
    performance = {"task": "classification", "prediction_column": "churn_pred", "window": "1h", "horizon": "1d",
                   "reference": {"path": "reference.csv"}, "min_labels": 100, "min_class_labels": 10}
    m = model_config("churn", kpis=[], slos=[], samples={"path": "samples"}, performance=performance)
    return make_vigil(make_config(tmp_path, models=[m]))


def test_a_reference_of_probabilities_is_no_data_naming_the_column(tmp_path: Path) -> None:
    vigil = _vigil(tmp_path, np.linspace(0.01, 0.99, 600))
    out = vigil.run_cycle("churn", T0)
    [gap] = [f.message for f in out.findings if f.kind == "no_data" and f.entity == "performance"]
    assert "'label'" in gap and "expected a class" in gap and "0.01" in gap


def test_reference_labels_that_are_no_class_are_left_out_and_said(tmp_path: Path) -> None:
    labels = np.tile([0.0, 1.0, 0.5], 200)  # a third no class
    vigil = _vigil(tmp_path, labels)
    vigil.run_cycle("churn", T0)
    report = vigil.store.labels.report("churn")
    assert report["reference_labels"] == 400
    assert "reference: 200 of 600 labels left out" in report["note"] and "e.g. 0.5" in report["note"]
