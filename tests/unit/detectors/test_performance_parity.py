"""Vigil's CBPE and realised performance equal NannyML 0.13.1's on NannyML's own synthetic
data sets, chunk by chunk, to 1e-6.

Binary classification (work from home): CBPE estimates of accuracy, precision, recall,
F1 and ROC AUC per chunk of 5,000 analysis rows, and the calibration decision; realised
figures against NannyML's PerformanceCalculator once the analysis targets are joined.
Regression (car prices): realised MAE, RMSE and MAPE against the PerformanceCalculator.
"""
from __future__ import annotations

import os
import warnings

import numpy as np
import pytest

from detectors.performance import estimate, fit_cbpe, realised_metrics

os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")  # NannyML phones home otherwise
nml = pytest.importorskip("nannyml")

TOL = 1e-6
CHUNK = 5000
BINARY_METRICS = ["roc_auc", "f1", "precision", "recall", "accuracy"]


@pytest.fixture(scope="module")
def binary() -> tuple:
    ref, ana, tgt = nml.load_synthetic_binary_classification_dataset()
    return ref, ana.merge(tgt, on="id")


def _chunks(df):  # noqa: ANN001, ANN202
    return [df.iloc[i:i + CHUNK] for i in range(0, len(df), CHUNK)]


def test_cbpe_estimates_equal_nannyml_per_chunk(binary: tuple) -> None:
    ref, ana = binary
    theirs = nml.CBPE(y_pred_proba="y_pred_proba", y_pred="y_pred", y_true="work_home_actual",
                      problem_type="classification_binary", metrics=BINARY_METRICS, chunk_size=CHUNK)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs.fit(ref.copy())
        res = theirs.estimate(ana.drop(columns=["work_home_actual"])).filter(period="analysis").to_df()
    state = fit_cbpe(ref["work_home_actual"].to_numpy(), ref["y_pred_proba"].to_numpy())
    assert state.calibrated == theirs.needs_calibration
    ours = [estimate(state, c["y_pred"].to_numpy(), c["y_pred_proba"].to_numpy()) for c in _chunks(ana)]
    assert len(ours) == len(res) == 10
    for metric in BINARY_METRICS:
        expected = res[(metric, "value")].to_numpy()
        got = np.array([o[metric] for o in ours])
        np.testing.assert_allclose(got, expected, rtol=0, atol=TOL, err_msg=metric)
    # The data set's drift is real: the later chunks estimate a lower ROC AUC, and so do we.
    assert ours[-1]["roc_auc"] < ours[0]["roc_auc"] - 0.005


def test_cbpe_state_survives_json_and_calibration_is_skipped_when_not_needed(binary: tuple) -> None:
    ref, ana = binary
    state = fit_cbpe(ref["work_home_actual"].to_numpy(), ref["y_pred_proba"].to_numpy())
    again = type(state).from_dict(state.to_dict())
    chunk = ana.iloc[:CHUNK]
    assert estimate(again, chunk["y_pred"].to_numpy(), chunk["y_pred_proba"].to_numpy()) == \
        estimate(state, chunk["y_pred"].to_numpy(), chunk["y_pred_proba"].to_numpy())
    # Perfectly separating scores (reference ROC AUC > 0.999) are not recalibrated, as in NannyML.
    y = ref["work_home_actual"].to_numpy()
    assert not fit_cbpe(y, y * 0.98 + 0.01).calibrated


def test_realised_classification_equals_nannyml_calculator(binary: tuple) -> None:
    ref, ana = binary
    calc = nml.PerformanceCalculator(y_pred_proba="y_pred_proba", y_pred="y_pred", y_true="work_home_actual",
                                     problem_type="classification_binary", metrics=BINARY_METRICS,
                                     chunk_size=CHUNK)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        calc.fit(ref.copy())
        res = calc.calculate(ana).filter(period="analysis").to_df()
    ours = [realised_metrics("classification", c["work_home_actual"].to_numpy(), c["y_pred"].to_numpy(),
                             c["y_pred_proba"].to_numpy()) for c in _chunks(ana)]
    for metric in BINARY_METRICS:
        np.testing.assert_allclose([o[metric] for o in ours], res[(metric, "value")].to_numpy(), rtol=0, atol=TOL,
                                   err_msg=metric)


def test_realised_regression_equals_nannyml_calculator() -> None:
    ref, ana, tgt = nml.load_synthetic_car_price_dataset()
    ana = ana.merge(tgt, on="id")
    calc = nml.PerformanceCalculator(y_pred="y_pred", y_true="y_true", problem_type="regression",
                                     metrics=["mae", "rmse", "mape"], chunk_size=CHUNK)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        calc.fit(ref.copy())
        res = calc.calculate(ana).filter(period="analysis").to_df()
    ours = [realised_metrics("regression", c["y_true"].to_numpy(), c["y_pred"].to_numpy()) for c in _chunks(ana)]
    for metric in ("mae", "rmse", "mape"):
        np.testing.assert_allclose([o[metric] for o in ours], res[(metric, "value")].to_numpy(), rtol=0, atol=TOL,
                                   err_msg=metric)
