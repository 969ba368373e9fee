"""Model performance: realised from delayed labels, estimated (CBPE) before they arrive.

    state = fit_cbpe(reference_labels, reference_scores)         # calibration, JSON-serialisable
    spec = WindowSpec("classification", 3600, min_labels=100,
                      estimator=lambda pred, score: estimate(state, pred, score))
    windows = evaluate_windows(join_labels(predictions, labels), t0, t1, spec)
    findings = judge(windows, reference_metrics, JudgeParams(model="churn", drop_pct=10))
"""
from detectors.performance.cbpe import CbpeState, estimate, fit_cbpe
from detectors.performance.judge import JudgeParams, judge
from detectors.performance.realised import (
    CLASSIFICATION_METRICS,
    REGRESSION_METRICS,
    Task,
    metric_names,
    realised_metrics,
)
from detectors.performance.windows import WindowPerformance, WindowSpec, evaluate_windows, join_labels

__all__ = [
    "CLASSIFICATION_METRICS",
    "REGRESSION_METRICS",
    "CbpeState",
    "JudgeParams",
    "Task",
    "WindowPerformance",
    "WindowSpec",
    "estimate",
    "evaluate_windows",
    "fit_cbpe",
    "join_labels",
    "judge",
    "metric_names",
    "realised_metrics",
]
