"""Labels that match no logged prediction are said: ids written one way in the samples and
another in the labels (zero-padded text vs the integer a CSV reader makes of it) used to
leave every window at "0 labels" with no finding, the same as labels not in yet."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from tests.helpers_vigil import T0, make_config, make_vigil, model_config

H = 3600.0


def test_labels_for_ids_no_prediction_has_are_a_finding(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    n = 600
    ids = [f"{i:08d}" for i in range(1, n + 1)]  # order numbers, zero-padded: a CSV reader makes 1..600
    pred = rng.integers(0, 2, n)
    (tmp_path / "samples").mkdir()
    pd.DataFrame({"timestamp": T0 - 4 * H + np.arange(n) * 10.0, "order_id": ids, "churn_pred": pred,
                  "model_version": "1"}).to_csv(tmp_path / "samples" / "p.csv", index=False)
    pd.DataFrame({"churn_pred": pred, "label": pred}).to_csv(tmp_path / "reference.csv", index=False)
    performance = {"task": "classification", "prediction_column": "churn_pred", "id_column": "order_id",
                   "reference": {"path": "reference.csv"}, "window": "1h", "horizon": "1d", "min_labels": 100}
    m = model_config("churn", kpis=[], slos=[], samples={"path": "samples"}, performance=performance)
    vigil = make_vigil(make_config(tmp_path, models=[m]))
    from monitor.store.labels import Label
    vigil.store.labels.add("churn", [Label(ids[i], float(pred[i]), T0 - 2 * H + i) for i in range(n)], T0)
    out = vigil.run_cycle("churn", T0)
    [gap] = [f.message for f in out.findings if f.kind == "no_data" and f.entity == "labels"]
    assert "600 labels" in gap and "'00000001'" in gap and "'1'" in gap


def test_labels_for_predictions_older_than_the_horizon_do_not_blame_the_ids(tmp_path: Path) -> None:
    """Labels that land 30 days late with the default 7-day horizon match no prediction of
    the horizon either: the finding asked only whether the ids were written differently."""
    rng = np.random.default_rng(4)
    n = 600
    ids = [f"c{i:05d}" for i in range(n)]
    pred = rng.integers(0, 2, n)
    (tmp_path / "samples").mkdir()
    pd.DataFrame({"timestamp": T0 - 40 * 86400 + np.arange(n) * 6000.0, "prediction_id": ids, "churn_pred": pred,
                  "model_version": "1"}).to_csv(tmp_path / "samples" / "p.csv", index=False)
    pd.DataFrame({"churn_pred": pred, "label": pred}).to_csv(tmp_path / "reference.csv", index=False)
    performance = {"task": "classification", "prediction_column": "churn_pred", "reference": {"path": "reference.csv"},
                   "window": "1d", "min_labels": 100}
    m = model_config("churn", kpis=[], slos=[], samples={"path": "samples"}, performance=performance)
    vigil = make_vigil(make_config(tmp_path, models=[m]))
    from monitor.store.labels import Label
    vigil.store.labels.add("churn", [Label(ids[i], float(pred[i]), T0 - 40 * 86400 + i * 6000.0 + 30 * 86400)
                                     for i in range(n)], T0)
    out = vigil.run_cycle("churn", T0)
    [gap] = [f.message for f in out.findings if f.kind == "no_data" and f.entity == "labels"]
    assert "performance.horizon" in gap
