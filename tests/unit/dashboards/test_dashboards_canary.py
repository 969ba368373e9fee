"""A model with a canary gets a canary row: the verdict, champion vs challenger per metric,
and the effect against the configured fail line; a model without one gets none."""
from __future__ import annotations

import copy

from dashboards.builder import panel_queries
from dashboards.model_dashboard import build_model_dashboard
from tests.unit.dashboards.test_dashboards_build import SAMPLE, model, sample_spec


def test_the_canary_row_shows_both_versions_per_metric_and_the_fail_line():
    models = copy.deepcopy(SAMPLE["models"])
    models[0]["canary"] = {"fail_effect": 0.2}
    spec = sample_spec(models=models)
    d = build_model_dashboard(spec.datasources, model(spec, "recommender"))
    rows = [p["title"] for p in d["panels"] if p["type"] == "row"]
    assert "Canary: challenger vs champion" in rows
    queries = {q.panel_title: q.expr for q in panel_queries(d)}
    assert queries["Canary: champion vs challenger per metric"] == (
        'max by (metric, role) (vigil_canary_metric_value{model="recommender"})')
    assert queries["Canary verdict"] == 'max(vigil_canary_verdict{model="recommender", metric="_overall"})'
    effect = next(p for p in d["panels"] if p["title"] == "Canary effect per metric")
    steps = effect["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert any(s.get("value") == 0.2 for s in steps)
    plain = sample_spec()
    d = build_model_dashboard(plain.datasources, model(plain, "recommender"))
    assert not any("Canary" in p["title"] for p in d["panels"])


def test_a_model_without_features_or_predictions_gets_no_empty_drift_panel():
    models = copy.deepcopy(SAMPLE["models"])
    models[1].pop("features")  # fraud.scorer: KPIs only
    spec = sample_spec(models=models)
    d = build_model_dashboard(spec.datasources, model(spec, "fraud.scorer"))
    assert not any(p["title"].startswith("Feature drift") for p in d["panels"])
    assert "feature" not in {v["name"] for v in d["templating"]["list"]}
