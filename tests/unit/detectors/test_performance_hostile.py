"""Hostile performance inputs: a few predictions logged without a probability (null) must
not make ROC AUC vanish for the whole window, and with it any ROC AUC drop."""
from __future__ import annotations

import numpy as np
import pandas as pd

from detectors.performance import JudgeParams, WindowSpec, evaluate_windows, join_labels, judge

H = 3600.0


def test_a_missing_probability_leaves_roc_auc_judged_on_the_rest() -> None:
    rng = np.random.default_rng(0)
    n = 1000
    truth = rng.integers(0, 2, n)
    score = rng.uniform(0, 1, n)  # the model has lost its ranking: ROC AUC ~0.5
    score[:3] = np.nan  # three fallback predictions were logged without a probability
    preds = pd.DataFrame({"prediction_id": [f"p{i}" for i in range(n)], "ts": np.linspace(0, H - 1, n),
                          "prediction": (score > 0.5).astype(float), "score": score, "version": "1"})
    labels = pd.DataFrame({"prediction_id": preds["prediction_id"], "label": truth.astype(float),
                           "label_ts": preds["ts"] + 600})
    [w] = evaluate_windows(join_labels(preds, labels), 0.0, H, WindowSpec("classification", H, min_labels=100))
    assert w.realised is not None and w.realised["roc_auc"] is not None
    assert abs(w.realised["roc_auc"] - 0.5) < 0.06
    reference = {"accuracy": 0.5, "precision": 0.5, "recall": 0.5, "f1": 0.5, "roc_auc": 0.93}
    drops = judge([w], reference, JudgeParams("churn", 10.0, judge_estimates=False))
    assert [f.entity for f in drops] == ["roc_auc"]
