"""Vigil's config -> the plain specs dashboards/ builds from: every value the dashboards
draw comes from the config, with per-model overrides resolved here."""
from __future__ import annotations

import copy
from typing import Any

import pytest

from dashboards.spec import (
    DataSourcesSpec,
    DataSourceUids,
    FolderSpec,
    GpuSpec,
    KpiSpec,
    LokiSpec,
    PolicySpec,
    PrometheusSpec,
    SloSpec,
    TempoSpec,
)
from monitor.config import VigilConfig, parse_config
from monitor.config_errors import ConfigError
from monitor.grafana.specs import dashboard_specs

CONFIG: dict[str, Any] = {
    "sources": {
        "prometheus": {"url": "http://prometheus:9090", "step": "30s"},
        "loki": {"url": "http://loki:3100", "tenant": "ml", "page_limit": 500},
        "tempo": {"url": "http://tempo:3200"},
    },
    "grafana": {"url": "http://grafana:3000", "folder_uid": "ml", "folder_title": "ML models",
                "prometheus_datasource_uid": "mimir"},
    "policy": {"drift_statistic": "ks", "drift_warning": 0.15, "drift_critical": 0.3, "kpi_drop_critical_pct": 7,
               "slo_consecutive_cycles": 4},
    "models": [
        {"name": "recommender", "registry_name": "recsys", "alias": "prod", "services": ["recsys-api", "recsys-db"],
         "kpis": [{"name": "ctr", "query": "ctr_q"},
                  {"name": "chargebacks", "query": "cb_q", "bad_direction": "up", "drop_pct": 10}],
         "slos": [{"name": "p99", "query": "p99_q", "threshold": 0.5, "unit": "s"},
                  {"name": "availability", "query": "avail_q", "threshold": 0.99, "comparison": "below"}],
         "gpu": {"selector": 'pod=~"recsys-.*"', "util_pct": 90, "min_duration": "10m"}},
        {"name": "fraud.scorer", "features": ["amount"],
         "kpis": [{"name": "approvals", "query": "appr_q"}],
         "policy": {"drift_statistic": "wasserstein", "drift_warning": 0.05, "drift_critical": 0.5,
                    "kpi_drop_critical_pct": 3}},
    ],
}


def config(**overrides: Any) -> VigilConfig:
    data = copy.deepcopy(CONFIG)
    data.update(overrides)
    return parse_config(data)


def test_data_sources_and_folder_come_from_the_config() -> None:
    spec = dashboard_specs(config())
    assert spec.datasources == DataSourcesSpec(
        uids=DataSourceUids(prometheus="mimir", loki="loki", tempo="tempo"),
        prometheus=PrometheusSpec(url="http://prometheus:9090", scrape_interval_s=30.0),
        loki=LokiSpec(url="http://loki:3100", max_lines=500, tenant="ml"),
        tempo=TempoSpec(url="http://tempo:3200"),
    )
    assert spec.folder == FolderSpec(uid="ml", title="ML models")


def test_loki_and_tempo_are_absent_when_not_configured() -> None:
    spec = dashboard_specs(config(sources={"prometheus": {"url": "http://p:9090"}}, grafana={}))
    assert spec.datasources.loki is None and spec.datasources.tempo is None
    assert spec.datasources.prometheus == PrometheusSpec(url="http://p:9090", scrape_interval_s=60.0)
    assert spec.datasources.uids == DataSourceUids(prometheus="prom", loki="loki", tempo="tempo")
    assert spec.folder == FolderSpec(uid="vigil", title="Vigil")


def test_models_keep_config_order_and_every_field_the_panels_draw() -> None:
    spec = dashboard_specs(config())
    assert [m.name for m in spec.models] == ["recommender", "fraud.scorer"]
    rec = spec.models[0]
    assert (rec.registry, rec.alias, rec.services) == ("recsys", "prod", ("recsys-api", "recsys-db"))
    assert rec.slos == (SloSpec("p99", "p99_q", 0.5, "above", "s"),
                        SloSpec("availability", "avail_q", 0.99, "below", ""))
    assert rec.gpu == GpuSpec(selector='pod=~"recsys-.*"', util_pct=90.0, fb_used_ratio=0.95, kv_cache_ratio=0.95,
                              queue_waiting=10.0, min_duration_s=600.0)
    fraud = spec.models[1]
    assert (fraud.registry, fraud.alias, fraud.services, fraud.slos, fraud.gpu) == ("fraud.scorer", "champion", (),
                                                                                    (), None)


def test_the_policy_in_force_is_resolved_per_model() -> None:
    rec, fraud = dashboard_specs(config()).models
    assert rec.policy == PolicySpec(drift_statistic="ks", drift_warning=0.15, drift_critical=0.3,
                                    slo_consecutive_cycles=4, drift_statistics=("ks",))
    # A model's own policy overrides the keys it names; the rest are the global policy's.
    assert fraud.policy == PolicySpec(drift_statistic="wasserstein", drift_warning=0.05, drift_critical=0.5,
                                      slo_consecutive_cycles=4, drift_statistics=("wasserstein",))


def test_categorical_features_add_the_statistic_they_are_judged_on() -> None:
    data = copy.deepcopy(CONFIG)
    data["models"][1]["features"] = ["amount", {"name": "country", "type": "categorical"}]
    fraud = dashboard_specs(parse_config(data)).models[1]
    assert fraud.policy.drift_statistics == ("wasserstein", "js")  # wasserstein has no categorical form
    data["models"][1]["policy"]["drift_statistic"] = "psi"
    assert dashboard_specs(parse_config(data)).models[1].policy.drift_statistics == ("psi",)


def test_a_kpi_drop_falls_back_to_its_models_policy() -> None:
    rec, fraud = dashboard_specs(config()).models
    assert rec.kpis == (KpiSpec("ctr", "ctr_q", "down", 7.0), KpiSpec("chargebacks", "cb_q", "up", 10.0))
    assert fraud.kpis == (KpiSpec("approvals", "appr_q", "down", 3.0),)


def test_specs_are_values() -> None:
    """Equal configs give equal, hashable specs: safe to cache or compare between provisions."""
    assert dashboard_specs(config()) == dashboard_specs(config())
    assert hash(dashboard_specs(config())) == hash(dashboard_specs(config()))


@pytest.mark.parametrize("value", ["ML models", "", "ml/models", "f" * 41])
def test_a_folder_uid_grafana_would_refuse_is_a_config_error_naming_the_field(value: str) -> None:
    """Grafana takes uids of 1 to 40 of [A-Za-z0-9_-]: a folder uid with a space or a slash
    failed every provisioning with Grafana's 400 'uid contains illegal characters' (one over 40:
    'uid too long'), and an empty one had Grafana make up a folder uid while the dashboards
    went to the General folder."""
    data = copy.deepcopy(CONFIG)
    data["grafana"]["folder_uid"] = value
    with pytest.raises(ConfigError) as e:
        parse_config(data)
    assert "grafana.folder_uid" in str(e.value) and "1 to 40 of A-Z a-z 0-9 _ -" in str(e.value), str(e.value)
