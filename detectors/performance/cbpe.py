"""CBPE: confidence-based performance estimation for binary classification.

Before labels arrive, a calibrated probability p says how likely each prediction is to
be right, so the confusion matrix of a window can be expected: a predicted positive adds
p to TP and 1 - p to FP, a predicted negative adds p to FN and 1 - p to TN. Accuracy,
precision, recall and F1 follow from the expected matrix; ROC AUC from the expected true
and false positives accumulated down the model's own ranking.

The method and every number follow NannyML 0.13.1 (nannyml.calibration and
nannyml.performance_estimation.confidence_based), so the two agree to 1e-6 on its
synthetic data (tests/unit/detectors/test_performance_parity.py):
- calibration is isotonic (increasing, clipped) and used only when it lowers the expected
  calibration error in 10 stratified 90/10 splits (random_state 42) of the reference,
  10 equal-count bins, and not when the reference ROC AUC is above 0.999;
- the ROC AUC estimate rounds the cumulated expectations to 5 decimals, as NannyML does.
What is left out is what Vigil does not show: NannyML's sampling errors, confidence bands
and reference-chunk thresholds (Vigil judges a drop against its own reference instead).

The fitted state is the isotonic curve's knots: a few hundred floats, stored as JSON.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import auc, roc_auc_score
from sklearn.model_selection import StratifiedShuffleSplit

ECE_BINS = 10
CALIBRATION_SPLITS = 10


@dataclass(frozen=True)
class CbpeState:
    """The calibration learnt on the reference; `calibrated` False means the scores are used as given."""

    calibrated: bool
    knots_x: tuple[float, ...] = ()
    knots_y: tuple[float, ...] = ()

    def calibrate(self, y_score: np.ndarray) -> np.ndarray:
        if not self.calibrated:
            return np.asarray(y_score, dtype=float)
        # IsotonicRegression(out_of_bounds="clip").predict is this interpolation between its knots.
        return np.interp(np.asarray(y_score, dtype=float), self.knots_x, self.knots_y)

    def to_dict(self) -> dict[str, Any]:
        return {"calibrated": self.calibrated, "knots_x": list(self.knots_x), "knots_y": list(self.knots_y)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CbpeState:
        return cls(bool(d["calibrated"]), tuple(map(float, d.get("knots_x", ()))),
                   tuple(map(float, d.get("knots_y", ()))))


def _isotonic() -> IsotonicRegression:
    return IsotonicRegression(out_of_bounds="clip", increasing=True)


def _bin_edges(n: int, bins: int) -> np.ndarray:
    """NannyML's equal-count bins: starts of `bins` bins of n // bins rows, the last one longer."""
    if n <= 2 * bins:
        bins = n // 2
        if bins < 2:
            raise ValueError(f"CBPE: {n} reference rows cannot be split into 2 calibration bins")
    edges = np.arange(0, n + 1, n // bins)
    edges[-1] = n
    return edges


def expected_calibration_error(y_true: np.ndarray, y_score: np.ndarray, edges: np.ndarray) -> float:
    """Row-weighted mean |mean score - share of positives| over equal-count bins of sorted scores."""
    order = y_score.argsort()  # the same (unstable) sort NannyML uses: ties fall into the same bins
    s, t = y_score[order], y_true[order].astype(float)
    starts, sizes = edges[:-1], np.diff(edges)
    gap = np.abs(np.add.reduceat(s, starts) / sizes - np.add.reduceat(t, starts) / sizes)
    return float(np.sum(sizes / len(s) * gap))


def needs_calibration(y_true: np.ndarray, y_score: np.ndarray) -> bool:
    """Whether isotonic calibration lowers the expected calibration error out of sample."""
    if len(np.unique(y_true)) == 1 or roc_auc_score(y_true, y_score) > 0.999:
        return False
    split = StratifiedShuffleSplit(n_splits=CALIBRATION_SPLITS, test_size=0.1, random_state=42)
    truth, raw, calibrated = [], [], []
    for train, test in split.split(y_score, y_true):
        iso = _isotonic().fit(y_score[train], y_true[train])
        truth.append(y_true[test])
        raw.append(y_score[test])
        calibrated.append(iso.predict(y_score[test]))
    t, r, c = np.concatenate(truth), np.concatenate(raw), np.concatenate(calibrated)
    edges = _bin_edges(len(r), ECE_BINS)
    return expected_calibration_error(t, r, edges) > expected_calibration_error(t, c, edges)


def fit_cbpe(y_true: np.ndarray, y_score: np.ndarray) -> CbpeState:
    """Learn the calibration from a labelled reference (labels 0/1, scores the probability of 1)."""
    y_true, y_score = np.asarray(y_true), np.asarray(y_score, dtype=float)
    keep = np.isfinite(y_score)
    y_true, y_score = y_true[keep], y_score[keep]
    if len(y_true) == 0:
        raise ValueError("CBPE: the reference has no rows with a label and a probability")
    if not needs_calibration(y_true, y_score):
        return CbpeState(False)
    iso = _isotonic().fit(y_score, y_true)
    return CbpeState(True, tuple(map(float, iso.X_thresholds_)), tuple(map(float, iso.y_thresholds_)))


def expected_roc_auc(p: np.ndarray, y_score: np.ndarray) -> float:
    """ROC AUC of the expected confusion matrices down the model's ranking (NannyML's estimate_roc_auc)."""
    ranked = p[np.argsort(y_score)[::-1]]
    with np.errstate(divide="ignore", invalid="ignore"):
        cum_tp = np.cumsum(ranked)
        cum_fp = 1 + np.arange(len(ranked)) - cum_tp
        tps = np.round(np.concatenate(([0.0], cum_tp)), 5)
        fps = np.round(np.concatenate(([0.0], cum_fp)), 5)
        return float(auc(fps / fps[-1], tps / tps[-1]))


def _ratio(num: float, den: float) -> float | None:
    """Undefined (None) for 0/0: no predicted positives has no precision, never a precision of 0."""
    return num / den if den != 0 else None


def estimate(state: CbpeState, y_pred: np.ndarray, y_score: np.ndarray) -> dict[str, float | None]:
    """Expected accuracy, precision, recall, F1 and ROC AUC of one window's predictions."""
    y_pred, y_score = np.asarray(y_pred), np.asarray(y_score, dtype=float)
    keep = np.isfinite(y_score) & ~np.isnan(y_pred.astype(float))
    y_pred, y_score = y_pred[keep], y_score[keep]
    if len(y_pred) == 0:
        return dict.fromkeys(("accuracy", "precision", "recall", "f1", "roc_auc"))
    p = state.calibrate(y_score)
    positive = y_pred == 1
    tp, fp = float(np.sum(p[positive])), float(np.sum(1 - p[positive]))
    fn, tn = float(np.sum(p[~positive])), float(np.sum(1 - p[~positive]))
    roc = expected_roc_auc(p, y_score)
    return {
        "accuracy": (tp + tn) / len(p),
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, tp + fn),
        "f1": _ratio(tp, tp + 0.5 * (fp + fn)),
        "roc_auc": roc if np.isfinite(roc) else None,
    }
