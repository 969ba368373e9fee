"""A model with `performance` gets a performance row: realised, estimated and reference per
metric of its task, label coverage and delay, all from Vigil's own bounded series."""
from __future__ import annotations

from dashboards.builder import panel_queries
from dashboards.model_dashboard import build_model_dashboard
from monitor.config import parse_config
from monitor.grafana.specs import dashboard_specs


def _dashboard(performance: dict | None) -> dict:
    m = {"name": "churn", "prediction_column": "p"}
    if performance:
        m["performance"] = performance
    spec = dashboard_specs(parse_config({"models": [m]}))
    return build_model_dashboard(spec.datasources, spec.models[0])


def _titles(d: dict) -> list[str]:
    return [p["title"] for p in d["panels"]]


def test_classification_row_shows_realised_beside_estimated_per_metric() -> None:
    d = _dashboard({"task": "classification", "probability_column": "s", "drop_pct": 15,
                    "reference": {"path": "ref.parquet"}})
    titles = _titles(d)
    assert "Performance (delayed labels)" in titles
    for metric in ("accuracy", "precision", "recall", "f1", "roc_auc"):
        assert f"{metric}: realised vs estimated" in titles
    queries = " ".join(q.expr for q in panel_queries(d))
    assert 'vigil_model_performance{model="churn", metric="accuracy", basis="estimated"}' in queries
    assert "vigil_label_coverage_ratio" in queries and "vigil_label_delay_seconds" in queries
    panel = next(p for p in d["panels"] if p["title"] == "accuracy: realised vs estimated")
    assert "falls 15%" in panel["description"]


def test_regression_row_and_no_row_without_performance() -> None:
    titles = _titles(_dashboard({"task": "regression", "reference": {"path": "ref.parquet"}}))
    assert "mae: realised vs estimated" in titles and "accuracy: realised vs estimated" not in titles
    assert "Performance (delayed labels)" not in _titles(_dashboard(None))
