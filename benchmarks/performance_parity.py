"""Performance estimation and realised performance, side by side with NannyML 0.13.1 on its
own synthetic data sets, in one process.

    python -m benchmarks.performance_parity            # best of 3 runs each
    python -m benchmarks.performance_parity --repeat 1

Per task it prints the largest difference per metric over every chunk of 5,000 analysis
rows, and both timings (fit on the reference + every chunk), with the ratio:
- CBPE (binary classification, work-from-home set): NannyML's `CBPE` against
  `detectors.performance.fit_cbpe` + `estimate`;
- realised, classification: NannyML's `PerformanceCalculator` against `realised_metrics`;
- realised, regression (car prices): the same for MAE, RMSE, MAPE.
NannyML's time includes what it computes that Vigil does not show (sampling errors,
reference-chunk thresholds, pandas result frames): the same job as Vigil's, done its way.
"""
from __future__ import annotations

import argparse
import os
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")  # NannyML phones home otherwise

from detectors.performance import estimate, fit_cbpe, realised_metrics  # noqa: E402

CHUNK = 5000
BINARY = ["roc_auc", "f1", "precision", "recall", "accuracy"]
REGRESSION = ["mae", "rmse", "mape"]


def _best(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def _chunks(df: pd.DataFrame) -> list[pd.DataFrame]:
    return [df.iloc[i:i + CHUNK] for i in range(0, len(df), CHUNK)]


def _line(name: str, theirs: tuple[float, pd.DataFrame], ours: tuple[float, list[dict]], metrics: list[str]) -> None:
    t_nml, res = theirs
    t_vig, rows = ours
    diffs = {m: float(np.max(np.abs(res[(m, "value")].to_numpy() - np.array([r[m] for r in rows]))))
             for m in metrics}
    worst = ", ".join(f"{m} {d:.1e}" for m, d in diffs.items())
    print(f"{name:<28} chunks={len(rows):<3} nannyml={t_nml:7.3f}s vigil={t_vig:7.3f}s "
          f"speedup={t_nml / t_vig:5.1f}x  max|diff|: {worst}")


def cbpe(nml: Any, repeat: int) -> None:
    ref, ana, _ = nml.load_synthetic_binary_classification_dataset()

    def theirs() -> pd.DataFrame:
        est = nml.CBPE(y_pred_proba="y_pred_proba", y_pred="y_pred", y_true="work_home_actual",
                       problem_type="classification_binary", metrics=BINARY, chunk_size=CHUNK)
        est.fit(ref.copy())
        return est.estimate(ana).filter(period="analysis").to_df()

    def ours() -> list[dict]:
        state = fit_cbpe(ref["work_home_actual"].to_numpy(), ref["y_pred_proba"].to_numpy())
        return [estimate(state, c["y_pred"].to_numpy(), c["y_pred_proba"].to_numpy()) for c in _chunks(ana)]

    _line("CBPE (binary)", _best(theirs, repeat), _best(ours, repeat), BINARY)


def realised_binary(nml: Any, repeat: int) -> None:
    ref, ana, tgt = nml.load_synthetic_binary_classification_dataset()
    ana = ana.merge(tgt, on="id")

    def theirs() -> pd.DataFrame:
        calc = nml.PerformanceCalculator(y_pred_proba="y_pred_proba", y_pred="y_pred", y_true="work_home_actual",
                                         problem_type="classification_binary", metrics=BINARY, chunk_size=CHUNK)
        calc.fit(ref.copy())
        return calc.calculate(ana).filter(period="analysis").to_df()

    def ours() -> list[dict]:
        return [realised_metrics("classification", c["work_home_actual"].to_numpy(), c["y_pred"].to_numpy(),
                                 c["y_pred_proba"].to_numpy()) for c in _chunks(ana)]

    _line("realised (binary)", _best(theirs, repeat), _best(ours, repeat), BINARY)


def realised_regression(nml: Any, repeat: int) -> None:
    ref, ana, tgt = nml.load_synthetic_car_price_dataset()
    ana = ana.merge(tgt, on="id")

    def theirs() -> pd.DataFrame:
        calc = nml.PerformanceCalculator(y_pred="y_pred", y_true="y_true", problem_type="regression",
                                         metrics=REGRESSION, chunk_size=CHUNK)
        calc.fit(ref.copy())
        return calc.calculate(ana).filter(period="analysis").to_df()

    def ours() -> list[dict]:
        return [realised_metrics("regression", c["y_true"].to_numpy(), c["y_pred"].to_numpy())
                for c in _chunks(ana)]

    _line("realised (regression)", _best(theirs, repeat), _best(ours, repeat), REGRESSION)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per side; the best is printed")
    args = parser.parse_args()
    import nannyml as nml

    print(f"nannyml {nml.__version__}, chunks of {CHUNK} rows, best of {args.repeat}, load {os.getloadavg()[0]:.1f}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for run in (cbpe, realised_binary, realised_regression):
            run(nml, args.repeat)


if __name__ == "__main__":
    main()
