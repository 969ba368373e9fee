"""ROC AUC and the CBPE estimate need the probability: a window where only a handful of
predictions were logged with one has no ROC AUC and no estimate, rather than figures read
off those few rows and judged like any other (`min_labels` is the floor of every figure)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from detectors.performance import JudgeParams, WindowSpec, estimate, evaluate_windows, fit_cbpe, join_labels, judge

H = 3600.0


def _window(n: int, scored: int) -> pd.DataFrame:
    """n predictions, right 90 % of the time; only the first `scored` carry a probability,
    and on those few the ranking happens to be backwards."""
    rng = np.random.default_rng(7)
    pred = rng.integers(0, 2, n).astype(float)
    truth = np.where(rng.random(n) < 0.9, pred, 1 - pred)
    score = np.full(n, np.nan)
    score[:scored] = np.where(truth[:scored] == 1, 0.3, 0.7)
    return pd.DataFrame({"prediction_id": [f"p{i}" for i in range(n)], "ts": np.linspace(0, H - 1, n),
                         "prediction": pred, "score": score, "version": "1", "_truth": truth})


def test_roc_auc_of_a_few_scored_rows_is_not_judged() -> None:
    rows = _window(300, 6)
    labels = rows[["prediction_id"]].assign(label=rows["_truth"], label_ts=rows["ts"] + 600)
    [w] = evaluate_windows(join_labels(rows.drop(columns="_truth"), labels), 0.0, H,
                           WindowSpec("classification", H, min_labels=100))
    assert w.realised is not None and w.realised["accuracy"] > 0.85
    assert w.realised["roc_auc"] is None  # 6 probabilities: not the ROC AUC of this window
    assert "roc_auc" in w.note
    reference = {"accuracy": 0.9, "precision": 0.9, "recall": 0.9, "f1": 0.9, "roc_auc": 0.95}
    assert [f.message for f in judge([w], reference, JudgeParams("churn", 10.0))] == []


def test_no_estimate_from_a_few_scored_predictions() -> None:
    rng = np.random.default_rng(0)
    ref_score = rng.uniform(0, 1, 5000)
    state = fit_cbpe((rng.random(5000) < ref_score).astype(int), ref_score)
    rows = _window(300, 6).drop(columns="_truth")
    spec = WindowSpec("classification", H, min_labels=100, estimator=lambda p, s: estimate(state, p, s))
    [w] = evaluate_windows(join_labels(rows, rows.iloc[:0][["prediction_id"]].assign(label=[], label_ts=[])),
                           0.0, H, spec)
    assert w.estimated is None


def test_estimated_precision_and_recall_of_a_handful_of_positives_are_not_judged() -> None:
    """The realised figures are withheld below `min_class_labels` of the rows they read; the
    estimate was not: a rare-positive hour with 4 positive predictions got an estimated
    precision read off those 4 and raised a performance_drop warning on it."""
    rng = np.random.default_rng(3)
    ref_score = rng.uniform(0, 1, 5000)
    state = fit_cbpe((rng.random(5000) < ref_score).astype(int), ref_score)
    n = 1000
    score = np.concatenate([rng.uniform(0.0, 0.05, n - 4), [0.55, 0.52, 0.51, 0.6]])  # 4 positives, ~40% right
    rows = pd.DataFrame({"prediction_id": [f"p{i}" for i in range(n)], "ts": np.linspace(0, H - 1, n),
                         "prediction": (score > 0.5).astype(float), "score": score, "version": "1"})
    spec = WindowSpec("classification", H, min_labels=100, estimator=lambda p, s: estimate(state, p, s),
                      min_class_labels=30)
    [w] = evaluate_windows(join_labels(rows, rows.iloc[:0][["prediction_id"]].assign(label=[], label_ts=[])),
                           0.0, H, spec)
    assert w.estimated is not None and w.estimated["accuracy"] is not None
    assert w.estimated["precision"] is None and w.estimated["f1"] is None and w.estimated["recall"] is None
    reference = {"accuracy": 0.95, "precision": 0.9, "recall": 0.9, "f1": 0.9, "roc_auc": 0.95}
    drops = judge([w], reference, JudgeParams("churn", 10.0))
    assert not any(f.entity in ("precision", "recall", "f1") for f in drops), [f.message for f in drops]


def test_roc_auc_needs_enough_of_each_class_among_the_scored_rows() -> None:
    """min_class_labels of each class counted over every labelled row, while ROC AUC reads
    only those with a probability: 150 scored rows holding 4 positives (one serving replica
    logs no probability) gave a ROC AUC read off 4 positives, judged like any other."""
    rng = np.random.default_rng(3)
    n = 300
    truth = (np.arange(n) % 5 == 0).astype(float)  # 60 positives
    pred = truth.copy()
    score = np.full(n, np.nan)
    scored = (truth == 0) & (np.arange(n) < 200) | (np.isin(np.arange(n), [0, 5, 10, 15]))
    score[scored] = np.where(truth[scored] == 1, 0.1, rng.uniform(0.2, 0.9, n)[scored])  # the 4 ranked last
    rows = pd.DataFrame({"prediction_id": [f"p{i}" for i in range(n)], "ts": np.linspace(0, H - 1, n),
                         "prediction": pred, "score": score, "version": "1"})
    labels = rows[["prediction_id"]].assign(label=truth, label_ts=rows["ts"] + 600)
    [w] = evaluate_windows(join_labels(rows, labels), 0.0, H, WindowSpec("classification", H, min_labels=100))
    assert w.realised is not None and w.realised["roc_auc"] is None, w.realised
    assert "4 positive and 160 negative labels" in w.note
