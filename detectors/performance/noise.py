"""How far a window's realised figure sits from the reference by chance alone.

A window reads recall off its positive labels, precision off its predicted positives: with
50 positives an hour, an unchanged model's recall moves by 7 points from hour to hour, and a
fixed `drop_pct` alone paged on 13 of 48 unchanged hours. Each realised figure carries what
it was read from (`support`), and a drop is judged only when the window is also worse than
the reference beyond that noise: one-sided, the figure's standard error under the
reference's own value (binomial for the ratios, Hanley-McNeil for ROC AUC, the spread of the
window's own errors for regression), Bonferroni across the window's figures. A CBPE estimate
is judged the same way, on the rows its realised figure would read (`estimated_support`).
"""
from __future__ import annotations

import math

import numpy as np
from scipy import special

from detectors.performance.realised import LOWER_IS_BETTER

Support = dict[str, tuple[float, float]]  # metric -> (rows it reads, second number: see below)


def classification_support(y_true: np.ndarray, y_pred: np.ndarray, score: np.ndarray | None) -> Support:
    """Rows each figure reads: accuracy all, precision the predicted positives, recall the
    positive labels, F1 half of both; ROC AUC (positive, negative) among the scored rows."""
    predicted, positive = float(y_pred.sum()), float(y_true.sum())
    out: Support = {"accuracy": (float(len(y_true)), 0.0), "precision": (predicted, 0.0),
                    "recall": (positive, 0.0), "f1": ((predicted + positive) / 2, 0.0)}
    if score is not None:
        ok = np.isfinite(score)
        pos = float(y_true[ok].sum())
        out["roc_auc"] = (pos, float(ok.sum()) - pos)
    return out


def estimated_support(predicted: np.ndarray, scores: np.ndarray, estimated: dict[str, float | None]) -> Support:
    """What each CBPE estimate stands for: the rows a realised figure of the same window would
    read. Its noise is judged as that realised figure's (binomial under the reference's value),
    as NannyML states CBPE's sampling error: an unchanged model's estimated recall, read off 50
    expected positives an hour, warned on 7 of 48 hours. Positives expected: the calibrated
    expectation, TP / recall with TP = precision x predicted positives (the raw scores' sum
    counted an uncalibrated model's 50 positives as 200). For accuracy this bounds the
    estimate's own spread from above (per-row confidences vary less than rows right or wrong)."""
    finite = np.isfinite(scores)
    n, predicted_pos = float(finite.sum()), float(predicted[finite].sum())
    precision, recall = estimated.get("precision"), estimated.get("recall")
    expected = precision * predicted_pos / recall if precision is not None and recall else float(scores[finite].sum())
    return {"accuracy": (n, 0.0), "precision": (predicted_pos, 0.0), "recall": (expected, 0.0),
            "f1": ((predicted_pos + expected) / 2, 0.0), "roc_auc": (expected, n - expected)}


def regression_support(y_true: np.ndarray, y_pred: np.ndarray) -> Support:
    """(rows, standard deviation of the per-row term) of each error: |e|, e², |e|/|y|."""
    err = np.asarray(y_pred, dtype=float) - np.asarray(y_true, dtype=float)
    n = float(len(err))
    out: Support = {"mae": (n, float(np.std(np.abs(err)))), "rmse": (n, float(np.std(err * err)))}
    if not np.any(y_true == 0):
        out["mape"] = (n, float(np.std(np.abs(err) / np.abs(y_true))))
    return out


def standard_error(metric: str, value: float, reference: float, support: tuple[float, float]) -> float | None:
    """The figure's standard error were the window as good as the reference; None when unknown."""
    n, second = support
    if n <= 0:
        return None
    if metric == "roc_auc":
        return _hanley_mcneil(reference, n, second)
    if metric == "rmse":  # delta method: sqrt of a mean of squares
        return second / math.sqrt(n) / (2 * value) if value > 0 else None
    if metric in LOWER_IS_BETTER:
        return second / math.sqrt(n)
    r = min(max(reference, 0.0), 1.0)
    return math.sqrt(r * (1 - r) / n)


def _hanley_mcneil(auc: float, n_pos: float, n_neg: float) -> float | None:
    if n_pos <= 0 or n_neg <= 0:
        return None
    a = min(max(auc, 0.0), 1.0)
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    var = (a * (1 - a) + (n_pos - 1) * (q1 - a * a) + (n_neg - 1) * (q2 - a * a)) / (n_pos * n_neg)
    return math.sqrt(max(var, 0.0))


def chance(metric: str, value: float, reference: float, support: tuple[float, float] | None) -> float | None:
    """One-sided p-value of a window at least this much worse than the reference by chance;
    None when the noise is unknown (no support recorded: judged on `drop_pct` alone)."""
    if support is None:
        return None
    se = standard_error(metric, value, reference, support)
    if se is None or not math.isfinite(se):
        return None
    worse = value - reference if metric in LOWER_IS_BETTER else reference - value
    if se == 0:
        return 0.0 if worse > 0 else 1.0
    return float(special.ndtr(-worse / se))
