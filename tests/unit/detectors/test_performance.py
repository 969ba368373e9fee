"""Performance from delayed labels, as a user meets it: coverage and delay per window, a
window with too few labels says so, a drop against the reference becomes a finding with
the numbers, and an estimate (CBPE) speaks before the labels do."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from detectors.performance import (
    JudgeParams,
    WindowSpec,
    estimate,
    evaluate_windows,
    fit_cbpe,
    join_labels,
    judge,
    realised_metrics,
)
from detectors.records import FindingKind

H = 3600.0


def _predictions(n: int, start: float, accuracy: float, seed: int, version: str = "1") -> pd.DataFrame:
    """Calibrated scores (the truth is drawn from them, as CBPE assumes) whose confidence
    gives about the asked accuracy: a worse window's scores crowd towards 0.5."""
    rng = np.random.default_rng(seed)
    margin = rng.uniform(2 * accuracy - 1 - 0.1, min(1.0, 2 * accuracy - 1 + 0.1), n).clip(0, 1) / 2
    score = 0.5 + np.where(rng.random(n) < 0.5, -1, 1) * margin
    truth = (rng.random(n) < score).astype(int)
    pred = (score >= 0.5).astype(int)
    return pd.DataFrame({"prediction_id": [f"{version}-{seed}-{i}" for i in range(n)],
                         "ts": start + np.linspace(0, H - 1, n), "prediction": pred, "score": score,
                         "version": version, "_truth": truth})


def _labels(preds: pd.DataFrame, share: float, delay: float) -> pd.DataFrame:
    some = preds.iloc[: int(len(preds) * share)]
    return pd.DataFrame({"prediction_id": some["prediction_id"], "label": some["_truth"].astype(float),
                         "label_ts": some["ts"] + delay})


def test_realised_metrics_are_scikit_learns() -> None:
    y, p = np.array([1, 0, 1, 1, 0, 0]), np.array([1, 0, 0, 1, 1, 0])
    got = realised_metrics("classification", y, p, np.array([0.9, 0.2, 0.4, 0.8, 0.6, 0.1]))
    assert got["accuracy"] == pytest.approx(4 / 6) and got["precision"] == pytest.approx(2 / 3)
    assert got["recall"] == pytest.approx(2 / 3) and got["roc_auc"] == pytest.approx(8 / 9)
    reg = realised_metrics("regression", np.array([10.0, 20.0]), np.array([12.0, 17.0]))
    assert reg == {"mae": 2.5, "rmse": pytest.approx(np.sqrt(6.5)), "mape": pytest.approx(0.175)}
    # One class in the labels: ROC AUC is unknown, not 0.5 or 0; a zero label makes MAPE unknown.
    assert realised_metrics("classification", np.ones(3, int), np.ones(3, int), np.ones(3))["roc_auc"] is None
    assert realised_metrics("regression", np.array([0.0, 1.0]), np.array([1.0, 1.0]))["mape"] is None


def test_coverage_delay_and_too_few_labels_per_window() -> None:
    first, second = _predictions(400, 0.0, 0.9, 1), _predictions(400, H, 0.9, 2)
    labels = pd.concat([_labels(first, 0.75, 2 * H), _labels(second, 0.1, 0.5 * H)])
    joined = join_labels(pd.concat([first, second]).drop(columns="_truth"), labels)
    windows = evaluate_windows(joined, 0.0, 2 * H, WindowSpec("classification", H, min_labels=100))
    assert [(w.start, w.predictions, w.labelled) for w in windows] == [(0.0, 400, 300), (H, 400, 40)]
    assert windows[0].coverage == 0.75 and windows[0].delay_median_s == pytest.approx(2 * H)
    assert windows[0].realised is not None and windows[0].realised["accuracy"] == pytest.approx(0.9, abs=0.05)
    assert windows[1].realised is None and "40 labels, fewer than the 100 needed" in windows[1].note


def test_accuracy_drop_of_ten_percent_is_a_finding_with_its_numbers() -> None:
    reference = {"accuracy": 0.9, "precision": 0.9, "recall": 0.9, "f1": 0.9, "roc_auc": 0.95}
    bad = _predictions(1000, 0.0, 0.7, 3)
    joined = join_labels(bad.drop(columns="_truth"), _labels(bad, 0.8, H))
    windows = evaluate_windows(joined, 0.0, H, WindowSpec("classification", H, min_labels=100))
    found = judge(windows, reference, JudgeParams(model="churn", drop_pct=10))
    acc = next(f for f in found if f.entity == "accuracy")
    assert acc.kind == FindingKind.PERFORMANCE_DROP and acc.evidence["basis"] == "realised"
    assert acc.value <= -10 and acc.threshold == -10 and acc.baseline == 0.9
    assert "coverage 80%" in acc.message and "median label delay 1.0 h" in acc.message
    # The same accuracy as the reference: nothing to say.
    good = _predictions(1000, 0.0, 0.9, 4)
    ok = evaluate_windows(join_labels(good.drop(columns="_truth"), _labels(good, 0.8, H)), 0.0, H,
                          WindowSpec("classification", H, min_labels=100))
    assert not [f for f in judge(ok, reference, JudgeParams(model="churn")) if f.entity == "accuracy"]


def test_regression_error_growth_is_a_drop() -> None:
    reference = {"mae": 2.0, "rmse": 2.5, "mape": 0.1}
    rng = np.random.default_rng(5)
    truth = rng.uniform(10, 30, 500)
    preds = pd.DataFrame({"prediction_id": [str(i) for i in range(500)], "ts": np.linspace(0, H - 1, 500),
                          "prediction": truth + rng.normal(0, 5, 500), "version": "2"})
    labels = pd.DataFrame({"prediction_id": preds["prediction_id"], "label": truth, "label_ts": preds["ts"] + 60})
    windows = evaluate_windows(join_labels(preds, labels), 0.0, H, WindowSpec("regression", H, min_labels=50))
    found = {f.entity: f for f in judge(windows, reference, JudgeParams(model="price"))}
    assert found["mae"].value > 10 and found["mae"].threshold == 10


def test_estimate_speaks_before_labels_and_sits_beside_realised_after() -> None:
    ref = _predictions(5000, -10 * H, 0.9, 6)
    state = fit_cbpe(ref["_truth"].to_numpy(), ref["score"].to_numpy())
    spec = WindowSpec("classification", H, min_labels=100,
                      estimator=lambda pred, score: estimate(state, pred, score))
    reference = realised_metrics("classification", ref["_truth"].to_numpy(), ref["prediction"].to_numpy(),
                                 ref["score"].to_numpy())
    # The scores of the new window are those of a worse model: CBPE expects it before any label.
    worse = _predictions(1000, 0.0, 0.6, 7)
    windows = evaluate_windows(join_labels(worse.drop(columns="_truth"), worse.iloc[:0].assign(label=[], label_ts=[])),
                               0.0, H, spec)
    assert windows[0].realised is None and windows[0].estimated is not None
    found = judge(windows, reference, JudgeParams(model="churn"))
    assert any(f.entity == "accuracy" and f.evidence["basis"] == "estimated" for f in found)
    # Labels land: realised and estimated side by side, the realised one judged.
    windows = evaluate_windows(join_labels(worse.drop(columns="_truth"), _labels(worse, 1.0, H)), 0.0, H, spec)
    w = windows[0]
    assert w.realised is not None and w.estimated is not None
    assert abs(w.realised["accuracy"] - w.estimated["accuracy"]) < 0.1
    assert {f.evidence["basis"] for f in judge(windows, reference, JudgeParams(model="churn"))} == {"realised"}
