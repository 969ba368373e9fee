"""Precision, recall and F1 of a window the data cannot define (nothing positive, nothing
predicted positive: 0/0) are undefined, never 0: a rare-positive model's quiet hour must
not read as a -100 % drop and page."""
from __future__ import annotations

import numpy as np
import pandas as pd

from detectors.performance import JudgeParams, WindowSpec, evaluate_windows, join_labels, judge
from detectors.records import FindingKind

H = 3600.0


def test_window_without_positive_labels_and_perfect_predictions_is_not_a_drop() -> None:
    # A fraud-style classifier: positives are rare. This hour 150 labels arrived, none positive,
    # and the model predicted every one of them negative: it was right 150 times out of 150.
    n = 150
    preds = pd.DataFrame({"prediction_id": [f"p{i}" for i in range(n)], "ts": np.linspace(0, H - 1, n),
                          "prediction": np.zeros(n), "score": np.full(n, 0.02), "version": "1"})
    labels = pd.DataFrame({"prediction_id": preds["prediction_id"], "label": np.zeros(n),
                           "label_ts": preds["ts"] + 600})
    windows = evaluate_windows(join_labels(preds, labels), 0.0, H, WindowSpec("classification", H, min_labels=100))
    [w] = windows
    print("realised", w.realised)
    assert w.realised is not None and w.realised["accuracy"] == 1.0
    reference = {"accuracy": 0.97, "precision": 0.80, "recall": 0.70, "f1": 0.75, "roc_auc": 0.93}
    drops = [f for f in judge(windows, reference, JudgeParams("fraud", 10.0, judge_estimates=False))
             if f.kind == FindingKind.PERFORMANCE_DROP]
    for f in drops:
        print(f.message)
    assert drops == [], [f.message for f in drops]


def test_estimate_of_a_window_without_predicted_positives_is_not_a_drop() -> None:
    # Labels not in yet; CBPE estimates. The model predicted no positive this hour (rare class),
    # so precision is undefined; it must not be read as 0 and raise an estimated drop.
    from detectors.performance import estimate, fit_cbpe
    rng = np.random.default_rng(0)
    ref_score = rng.uniform(0, 1, 5000)
    ref_y = (rng.random(5000) < ref_score).astype(int)
    state = fit_cbpe(ref_y, ref_score)
    n = 150
    preds = pd.DataFrame({"prediction_id": [f"p{i}" for i in range(n)], "ts": np.linspace(0, H - 1, n),
                          "prediction": np.zeros(n), "score": np.full(n, 0.02), "version": "1"})
    spec = WindowSpec("classification", H, min_labels=100, estimator=lambda p, s: estimate(state, p, s))
    windows = evaluate_windows(join_labels(preds, preds.iloc[:0][["prediction_id"]].assign(label=[], label_ts=[])),
                               0.0, H, spec)
    [w] = windows
    print("estimated", w.estimated)
    reference = {"accuracy": 0.75, "precision": 0.75, "recall": 0.75, "f1": 0.75, "roc_auc": 0.83}
    drops = [f.message for f in judge(windows, reference, JudgeParams("fraud", 10.0))
             if f.entity == "precision"]
    assert drops == [], drops


def test_precision_and_recall_of_a_handful_of_positives_are_not_judged() -> None:
    # The same rare-positive model: of 150 labels this hour one is positive (the model missed
    # it) and the model flagged one negative. Precision and recall read 0 off one row each:
    # noise, not a -100 % drop. Accuracy (148 of 150 right) is judged as usual.
    n = 150
    pred, truth = np.zeros(n), np.zeros(n)
    pred[0], truth[1] = 1.0, 1.0
    preds = pd.DataFrame({"prediction_id": [f"p{i}" for i in range(n)], "ts": np.linspace(0, H - 1, n),
                          "prediction": pred, "score": np.where(pred == 1, 0.9, 0.02), "version": "1"})
    labels = pd.DataFrame({"prediction_id": preds["prediction_id"], "label": truth, "label_ts": preds["ts"] + 600})
    [w] = evaluate_windows(join_labels(preds, labels), 0.0, H, WindowSpec("classification", H, min_labels=100))
    assert w.realised is not None and w.realised["accuracy"] == 148 / 150
    assert (w.realised["precision"], w.realised["recall"], w.realised["f1"]) == (None, None, None)
    assert "1 predicted positive" in w.note and "1 positive label" in w.note
    reference = {"accuracy": 0.97, "precision": 0.80, "recall": 0.70, "f1": 0.75, "roc_auc": 0.93}
    drops = [f.message for f in judge([w], reference, JudgeParams("fraud", 10.0, judge_estimates=False))]
    assert drops == []
