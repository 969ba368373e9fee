"""Realised performance: the model's outputs scored against the labels that arrived.

scikit-learn's metrics, nothing hand-written. A metric that the data cannot define (ROC
AUC when the labels hold one class, MAPE when a label is 0) is None: unknown, never 0.
"""
from __future__ import annotations

from typing import Literal

import numpy as np
from sklearn import config_context
from sklearn.metrics import (
    accuracy_score,
    mean_absolute_error,
    mean_absolute_percentage_error,
    precision_recall_fscore_support,
    roc_auc_score,
    root_mean_squared_error,
)

Task = Literal["classification", "regression"]
CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")
REGRESSION_METRICS = ("mae", "rmse", "mape")
# Which way is bad: a classification metric falls, a regression error grows.
LOWER_IS_BETTER = frozenset(REGRESSION_METRICS)


def metric_names(task: Task) -> tuple[str, ...]:
    return CLASSIFICATION_METRICS if task == "classification" else REGRESSION_METRICS


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, y_score: np.ndarray | None
                           ) -> dict[str, float | None]:
    """Binary labels and predictions (0/1); `y_score` the predicted probability of class 1."""
    # One call for precision, recall and F1 (what precision_score & co. each call). No
    # predicted (or no actual) positives leaves a ratio 0/0: undefined (None), not 0, or a
    # rare-positive model's quiet hour (nothing positive, nothing predicted) reads as -100 %.
    scores = precision_recall_fscore_support(y_true, y_pred, average="binary", labels=[0, 1],
                                             zero_division=np.nan)[:3]
    precision, recall, f1 = (float(x) if np.isfinite(x) else None for x in scores)
    out: dict[str, float | None] = {
        "accuracy": float(accuracy_score(y_true, y_pred)), "precision": precision,
        "recall": recall, "f1": f1, "roc_auc": None,
    }
    if y_score is not None:
        # Rows logged without a probability (null) are left out of ROC AUC alone: one of them
        # used to make it undefined for the whole window (and the reference), so never judged.
        ok = np.isfinite(y_score)
        if len(np.unique(y_true[ok])) == 2:
            out["roc_auc"] = float(roc_auc_score(y_true[ok], y_score[ok]))
    return out


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float | None]:
    out: dict[str, float | None] = {
        "mae": float(mean_absolute_error(y_true, y_pred)),
        "rmse": float(root_mean_squared_error(y_true, y_pred)),
        "mape": None,
    }
    if not np.any(y_true == 0):  # scikit-learn divides by max(|y|, eps): a zero label would read as 1e15
        out["mape"] = float(mean_absolute_percentage_error(y_true, y_pred))
    return out


def realised_metrics(task: Task, y_true: np.ndarray, y_pred: np.ndarray, y_score: np.ndarray | None = None
                     ) -> dict[str, float | None]:
    """Every metric of the task on labelled rows (the caller has dropped unlabelled ones)."""
    if len(y_true) == 0:
        raise ValueError("realised_metrics: no labelled rows")
    if not (np.isfinite(np.asarray(y_true, dtype=float)).all() and np.isfinite(np.asarray(y_pred, dtype=float)).all()):
        raise ValueError("realised_metrics: labels and predictions must be finite (drop missing rows first)")
    # The inputs are checked here (finite, 1-d, 0/1 classes): scikit-learn's own checks of the
    # same, repeated in every metric, cost ten times the metrics on a window of a few thousand.
    with config_context(skip_parameter_validation=True, assume_finite=True):
        if task == "classification":
            return classification_metrics(np.asarray(y_true, dtype=int), np.asarray(y_pred, dtype=int), y_score)
        return regression_metrics(np.asarray(y_true, dtype=float), np.asarray(y_pred, dtype=float))
