"""The generated dashboards and provisioning files have the shape Grafana expects and
follow the config they were generated from."""
from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from dashboards.builder import _walk, panel_queries, variable_defaults
from dashboards.datasources import TRACE_ID_IN_LINE, datasource_models
from dashboards.model_dashboard import build_model_dashboard
from dashboards.overview import build_overview_dashboard
from dashboards.provisioning import build_all, write_provisioning_files
from dashboards.spec import (
    DashboardSpec,
    DataSourcesSpec,
    DataSourceUids,
    FolderSpec,
    ModelSpec,
    PolicySpec,
    PrometheusSpec,
)
from dashboards.uids import OVERVIEW_UID, VIGIL_UID, dashboard_uid, model_dashboard_uid
from monitor.config import VigilConfig, parse_config
from monitor.grafana.specs import dashboard_specs

SAMPLE: dict[str, Any] = {
    "sources": {
        "prometheus": {"url": "http://prometheus:9090"},
        "loki": {"url": "http://loki:3100", "tenant": "ml"},
        "tempo": {"url": "http://tempo:3200"},
    },
    "grafana": {"url": "http://grafana:3000", "folder_uid": "vigil", "folder_title": "Vigil"},
    "models": [
        {
            "name": "recommender",
            "services": ["recsys-api"],
            "features": ["user_age", "session_length", "item_popularity", {"name": "device", "type": "categorical"}],
            "prediction_column": "score",
            "kpis": [{
                "name": "ctr",
                "query": 'sum(rate(recsys_clicks_total{model="recommender"}[5m])) / '
                         'sum(rate(recsys_impressions_total{model="recommender"}[5m]))',
            }],
            "slos": [
                {"name": "p99_latency", "threshold": 0.5, "unit": "s",
                 "query": 'histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket'
                          '{service="recsys-api"}[5m])))'},
                {"name": "error_ratio", "threshold": 0.02,
                 "query": 'sum(rate(http_requests_total{service="recsys-api",code=~"5.."}[5m])) / '
                          'sum(rate(http_requests_total{service="recsys-api"}[5m]))'},
            ],
            "gpu": {"selector": 'pod=~"recsys-api-.*"'},
            "root_cause": {"metrics": [
                {"name": "http_errors",
                 "query": 'sum by (service) (rate(http_requests_total{service=~"recsys-.*",code=~"5.."}[5m]))'},
                {"name": "goodput", "meaning": "availability",
                 "query": 'sum by (service) (rate(http_requests_total{service=~"recsys-.*",code!~"5.."}[5m]))'},
            ]},
        },
        {
            # A dotted name (regex-escaped in PromQL, hashed in the uid), no GPU, KPI going up is bad.
            "name": "fraud.scorer",
            "services": ["fraud-api"],
            "features": ["amount"],
            "kpis": [{"name": "chargebacks", "bad_direction": "up", "drop_pct": 10,
                      "query": 'vigil_kpi_value{model="fraud.scorer", kpi="chargebacks"}'}],
        },
    ],
}


def sample_config(**overrides: Any) -> VigilConfig:
    data = copy.deepcopy(SAMPLE)
    data.update(overrides)
    return parse_config(data)


def sample_spec(**overrides: Any) -> DashboardSpec:
    """The sample config as the dashboards see it (the mapping is tested in tests/unit/monitor)."""
    return dashboard_specs(sample_config(**overrides))


def model(spec: DashboardSpec, name: str) -> ModelSpec:
    return next(m for m in spec.models if m.name == name)


@pytest.fixture(scope="module")
def config() -> VigilConfig:
    return sample_config()


@pytest.fixture(scope="module")
def spec(config: VigilConfig) -> DashboardSpec:
    return dashboard_specs(config)


@pytest.fixture(scope="module")
def dashboards(spec: DashboardSpec) -> list[dict[str, Any]]:
    return build_all(spec)


def test_every_dashboard_has_grafana_shape(dashboards: list[dict[str, Any]], config: VigilConfig) -> None:
    uids = {config.grafana.prometheus_datasource_uid: "prometheus", config.grafana.loki_datasource_uid: "loki",
            config.grafana.tempo_datasource_uid: "tempo", "-- Grafana --": "grafana"}
    for d in dashboards:
        assert isinstance(d["schemaVersion"], int) and d["schemaVersion"] >= 36
        assert d["id"] is None and d["title"] and d["uid"]
        ids = [p["id"] for p in _walk(d["panels"])]
        assert len(ids) == len(set(ids)), f"{d['uid']}: duplicate panel ids {ids}"
        assert all(isinstance(i, int) and i > 0 for i in ids)
        for p in _walk(d["panels"]):
            gp = p["gridPos"]
            assert set(gp) >= {"h", "w", "x", "y"} and gp["x"] >= 0 and gp["x"] + gp["w"] <= 24, p["title"]
            if p["type"] in ("row", "annolist"):
                continue
            assert uids.get(p["datasource"]["uid"]) == p["datasource"]["type"], p["title"]
            ref_ids = [t["refId"] for t in p["targets"]]
            assert ref_ids and len(ref_ids) == len(set(ref_ids)) and all(ref_ids), p["title"]
            for t in p["targets"]:
                assert t["datasource"] == p["datasource"]
        json.dumps(d)  # JSON-serialisable as is


def test_panels_do_not_overlap(dashboards: list[dict[str, Any]]) -> None:
    for d in dashboards:
        cells: dict[tuple[int, int], str] = {}
        for p in d["panels"]:
            gp = p["gridPos"]
            for x in range(gp["x"], gp["x"] + gp["w"]):
                for y in range(gp["y"], gp["y"] + gp["h"]):
                    assert (x, y) not in cells, f"{d['uid']}: {p['title']!r} overlaps {cells[(x, y)]!r}"
                    cells[(x, y)] = p["title"]


def test_uids_are_stable_short_and_distinct() -> None:
    assert model_dashboard_uid("recommender") == "vigil-recommender"
    dotted, dashed = model_dashboard_uid("a.b"), model_dashboard_uid("a-b")
    assert dotted != dashed and dotted == model_dashboard_uid("a.b")
    long = dashboard_uid("x" * 100)
    assert len(long) <= 40 and long != dashboard_uid("x" * 99)
    spec = sample_spec()
    assert [d["uid"] for d in build_all(spec)] == [OVERVIEW_UID, VIGIL_UID, "vigil-recommender",
                                                   model_dashboard_uid("fraud.scorer")]
    assert build_all(spec) == build_all(sample_spec()), "generation must be deterministic"


def test_model_dashboard_follows_config(spec: DashboardSpec) -> None:
    d = build_model_dashboard(spec.datasources, model(spec, "recommender"))
    titles = [p["title"] for p in d["panels"]]
    rows = [p["title"] for p in d["panels"] if p["type"] == "row"]
    assert rows == ["Model health", "Serving: recsys-api", "GPU", "Root-cause metrics", "Logs and traces"]
    assert {"KPI: ctr", "SLO: p99_latency", "SLO: error_ratio", "GPU utilisation (DCGM)", "vLLM KV-cache usage",
            "vLLM requests waiting", "Error logs", "Slow or failing traces"} <= set(titles)
    assert {v["name"] for v in d["templating"]["list"]} == {"env", "pod", "feature"}
    assert variable_defaults(d) == {"env": ".*", "pod": ".*", "feature": ".*"}
    tags = {tuple(a["target"]["tags"]) for a in d["annotations"]["list"]}
    assert tags == {("vigil", "deploy", "recommender"), ("vigil", "incident", "recommender"),
                    ("vigil", "rollback", "recommender")}

    def panel(title: str) -> dict[str, Any]:
        return next(p for p in d["panels"] if p["title"] == title)

    # SLO thresholds are drawn, as dashed lines, at the configured values.
    lat = panel("Latency p50/p99 (http_request_duration_seconds)")
    steps = lat["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert steps[-1]["value"] == 0.5 and lat["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"] == "dashed"
    assert panel("Error rate (5xx / all)")["fieldConfig"]["defaults"]["thresholds"]["steps"][-1]["value"] == 0.02
    assert panel("GPU utilisation (DCGM)")["fieldConfig"]["defaults"]["thresholds"]["steps"][-1]["value"] == 95
    drift = panel("Feature drift (psi)")["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [s["value"] for s in drift] == [None, 0.1, 0.2]
    # SLO units agree with the panel that draws the same signal: an error ratio is a share.
    assert panel("SLO: error_ratio")["fieldConfig"]["defaults"]["unit"] == "percentunit"
    assert panel("Error rate (5xx / all)")["fieldConfig"]["defaults"]["unit"] == "percentunit"
    assert panel("SLO: p99_latency")["fieldConfig"]["defaults"]["unit"] == "s"
    # Click the latency -> the logs of that service.
    link = lat["fieldConfig"]["defaults"]["links"][0]
    assert "${__field.labels.service}" in link["url"] and '"uid":"loki"' in link["url"].replace("%22", '"')


def test_root_cause_metrics_get_a_panel_each_with_a_series_per_service(spec: DashboardSpec) -> None:
    """The configured `root_cause.metrics` queries, as written, one legend entry per
    service label value, with the meaning the detector gives them; a model without them
    (fraud.scorer) has no such row."""
    d = build_model_dashboard(spec.datasources, model(spec, "recommender"))
    panels = {p["title"]: p for p in d["panels"]}
    rc = SAMPLE["models"][0]["root_cause"]["metrics"]
    for m in rc:
        p = panels[f"Root cause: {m['name']}"]
        assert [(t["expr"], t["legendFormat"]) for t in p["targets"]] == [(m["query"], "{{service}}")]
        assert p["datasource"]["type"] == "prometheus" and p["gridPos"]["w"] == 12
    assert "errors, so a rise is bad" in panels["Root cause: http_errors"]["description"]
    assert "availability, so a fall is bad" in panels["Root cause: goodput"]["description"]
    fraud = build_model_dashboard(spec.datasources, model(spec, "fraud.scorer"))
    assert not [p for p in fraud["panels"] if p["title"].startswith("Root cause")]


def test_a_global_root_cause_section_serves_models_without_their_own() -> None:
    spec = sample_spec(root_cause={"service_label": "app",
                                   "metrics": [{"name": "requests", "query": "sum by (app) (x)"}]})
    fraud = build_model_dashboard(spec.datasources, model(spec, "fraud.scorer"))
    [p] = [p for p in fraud["panels"] if p["title"] == "Root cause: requests"]
    assert p["targets"][0]["legendFormat"] == "{{app}}" and p["gridPos"]["w"] == 24
    assert "unknown, so a move either way counts" in p["description"]
    recommender = build_model_dashboard(spec.datasources, model(spec, "recommender"))
    assert "Root cause: requests" not in {p["title"] for p in recommender["panels"]}  # its own section replaces it


def test_rows_appear_only_with_something_to_show() -> None:
    spec = sample_spec(sources={"prometheus": {"url": "http://p:9090"}})
    d = build_model_dashboard(spec.datasources, model(spec, "fraud.scorer"))
    rows = [p["title"] for p in d["panels"] if p["type"] == "row"]
    assert rows == ["Model health", "Serving: fraud-api"]
    assert {q.datasource_type for q in panel_queries(d)} == {"prometheus"}
    kpi = next(p for p in d["panels"] if p["title"] == "KPI: chargebacks")
    exprs = [t["expr"] for t in kpi["targets"]]
    assert exprs[2].endswith("* 1.1"), "bad_direction up with drop_pct 10 -> critical above baseline +10%"


def test_overview_lists_every_model(spec: DashboardSpec) -> None:
    d = build_overview_dashboard(spec)
    state = next(q for q in panel_queries(d) if q.panel_title == "Model state")
    assert 'model=~"$model"' in state.expr and "recommender" not in state.expr
    [var] = d["templating"]["list"]
    assert var["name"] == "model" and var["includeAll"] and var["multi"]
    # "All" is all the configured models, not every model Prometheus ever saw
    assert var["allValue"] == "recommender|fraud\\\\.scorer"  # as it goes inside the matcher's quotes
    assert 'model=~"recommender|fraud\\\\.scorer"' in var["query"]
    titles = {p["title"] for p in d["panels"]}
    assert {"Open incidents", "Rollbacks in range", "Recent rollbacks", "Sources"} <= titles
    rollbacks = next(p for p in d["panels"] if p["title"] == "Recent rollbacks")
    assert rollbacks["options"]["tags"] == ["vigil", "rollback"]


def test_a_multi_tenant_tempo_data_source_sends_the_tenant() -> None:
    """sources.tempo.tenant reaches Grafana's Tempo data source too, as Loki's does: a
    multi-tenant Tempo answers 401 without X-Scope-OrgID, and every trace panel was empty."""
    sources = {**SAMPLE["sources"], "tempo": {"url": "http://tempo:3200", "tenant": "ml"}}
    tempo = next(d for d in datasource_models(sample_spec(sources=sources).datasources) if d["type"] == "tempo")
    assert tempo["jsonData"]["httpHeaderName1"] == "X-Scope-OrgID"
    assert tempo["secureJsonData"]["httpHeaderValue1"] == "ml"
    plain = next(d for d in datasource_models(sample_spec().datasources) if d["type"] == "tempo")
    assert "httpHeaderName1" not in plain["jsonData"] and "secureJsonData" not in plain


def test_datasource_links_click_through(spec: DashboardSpec) -> None:
    by_type = {d["type"]: d for d in datasource_models(spec.datasources)}
    assert set(by_type) == {"prometheus", "loki", "tempo"}
    prom, loki, tempo = by_type["prometheus"], by_type["loki"], by_type["tempo"]
    assert prom["jsonData"]["exemplarTraceIdDestinations"][0]["datasourceUid"] == tempo["uid"]
    derived = loki["jsonData"]["derivedFields"]
    assert all(f["datasourceUid"] == tempo["uid"] and f["url"] == "${__value.raw}" for f in derived)
    assert loki["jsonData"]["httpHeaderName1"] == "X-Scope-OrgID" and loki["secureJsonData"]["httpHeaderValue1"] == "ml"
    t2l = tempo["jsonData"]["tracesToLogsV2"]
    assert t2l["datasourceUid"] == loki["uid"] and t2l["filterByTraceID"] is True
    import re
    rx = re.compile(TRACE_ID_IN_LINE)
    for line in ['level=error msg="timeout" trace_id=3149195ffb0bec05347b48efe8ecc1b0',
                 '{"level":"error","traceID":"3149195ffb0bec05"}']:
        m = rx.search(line)
        assert m and m.group(1) in line
    assert rx.search("no id here level=error") is None


def test_provisioning_files(tmp_path: Path, spec: DashboardSpec) -> None:
    written = write_provisioning_files(spec, tmp_path)
    rel = sorted(str(p.relative_to(tmp_path)) for p in written)
    assert rel == sorted(["provisioning/datasources/vigil.yaml", "provisioning/dashboards/vigil.yaml",
                          "dashboards/vigil-overview.json", "dashboards/vigil-self.json",
                          "dashboards/vigil-recommender.json",
                          f"dashboards/{model_dashboard_uid('fraud.scorer')}.json"])
    ds = yaml.safe_load((tmp_path / "provisioning/datasources/vigil.yaml").read_text())
    assert ds["apiVersion"] == 1 and {d["uid"] for d in ds["datasources"]} == {"prom", "loki", "tempo"}
    loki = next(d for d in ds["datasources"] if d["type"] == "loki")
    # Grafana expands $VAR in provisioning files; $$ keeps the literal ${__value.raw}.
    assert loki["jsonData"]["derivedFields"][0]["url"] == "$${__value.raw}"
    prov = yaml.safe_load((tmp_path / "provisioning/dashboards/vigil.yaml").read_text())["providers"][0]
    assert prov["folderUid"] == "vigil" and prov["type"] == "file"
    assert Path(prov["options"]["path"]) == (tmp_path / "dashboards").resolve()
    stored = json.loads((tmp_path / "dashboards/vigil-recommender.json").read_text())
    assert stored == build_model_dashboard(spec.datasources, model(spec, "recommender"))
    # Writing again gives the same bytes (safe to run from a deploy pipeline).
    before = {p: p.read_bytes() for p in written}
    write_provisioning_files(spec, tmp_path)
    assert all(p.read_bytes() == b for p, b in before.items())


def test_custom_datasource_uids_are_used_everywhere() -> None:
    spec = sample_spec(grafana={"prometheus_datasource_uid": "mimir", "loki_datasource_uid": "logs",
                                "tempo_datasource_uid": "traces"})
    for d in build_all(spec):
        for p in _walk(d["panels"]):
            if "datasource" in p and p["datasource"]["type"] != "grafana":
                assert p["datasource"]["uid"] in {"mimir", "logs", "traces"}
        for v in d["templating"]["list"]:
            if "datasource" in v:
                assert v["datasource"]["uid"] == "mimir"
    assert {m["uid"] for m in datasource_models(spec.datasources)} == {"mimir", "logs", "traces"}


def test_builders_need_only_specs(tmp_path: Path) -> None:
    """No config file: a hand-written spec is enough, and only what it gives is drawn."""
    sources = DataSourcesSpec(DataSourceUids("p", "l", "t"), PrometheusSpec("http://p:9090", 15.0))
    bare = ModelSpec("bare", registry="bare", alias="champion", policy=PolicySpec("psi", 0.1, 0.2, 3))
    d = build_model_dashboard(sources, bare)
    assert d["uid"] == "vigil-bare" and [p["title"] for p in d["panels"] if p["type"] == "row"] == ["Model health"]
    assert {q.datasource_type for q in panel_queries(d)} == {"prometheus"}
    spec = DashboardSpec(sources, FolderSpec("f", "F"), (bare,))
    assert [m["type"] for m in datasource_models(sources)] == ["prometheus"]
    assert datasource_models(sources)[0]["jsonData"]["timeInterval"] == "15s"
    written = write_provisioning_files(spec, tmp_path)
    assert len(written) == 5  # data sources, provider, overview, Vigil's own, one model


def test_drift_panels_offer_only_the_statistics_judged_on_with_their_own_thresholds() -> None:
    data = copy.deepcopy(SAMPLE)
    data["policy"] = {"drift_statistic": "ks", "drift_warning": 0.15, "drift_critical": 0.3}
    d = build_model_dashboard(*_sources_and_model(parse_config(data), "recommender"))
    drift = {p["title"]: p for p in d["panels"] if p["title"].startswith("Feature drift")}
    # ks for the numeric features, js for the categorical one (ks has no categorical form); no chi2
    assert set(drift) == {"Feature drift (ks)", "Feature drift (js)"}
    for title, p in drift.items():
        assert [s["value"] for s in p["fieldConfig"]["defaults"]["thresholds"]["steps"]] == [None, 0.15, 0.3]
        stat = title[len("Feature drift ("):-1]
        assert f'statistic="{stat}"' in p["targets"][0]["expr"]
    assert "chi2" not in json.dumps(d) and "$statistic" not in json.dumps(d)


def _sources_and_model(config: VigilConfig, name: str) -> tuple[DataSourcesSpec, ModelSpec]:
    spec = dashboard_specs(config)
    return spec.datasources, next(m for m in spec.models if m.name == name)


def test_vigil_dashboard_watches_vigil_itself(spec: DashboardSpec) -> None:
    d = next(x for x in build_all(spec) if x["uid"] == VIGIL_UID)
    exprs = {q.panel_title: q.expr for q in panel_queries(d)}
    assert "vigil_last_successful_cycle_timestamp_seconds" in exprs["Lag: time since the last successful cycle"]
    assert "vigil_outbox_pending" in exprs["Outbox backlog"]
    assert "vigil_source_up" in exprs["Source health"]
    assert "vigil_rollbacks_total" in exprs["Rollbacks in range"]
    assert "vigil_cycle_duration_seconds_count" in exprs["Cycles per minute"]
    # every metric the dashboard reads is one Vigil exports
    from prometheus_client import generate_latest

    from monitor.metrics import VigilMetrics

    m = VigilMetrics()
    m.init_model("recommender")
    m.cycle_succeeded("recommender", 1.0, "opened")
    m.cycle_duration.labels("recommender").observe(0.1)
    m.source_up.labels("prometheus").set(1)
    m.outbox_pending.set(0)
    m.audit_checkpoint_time.set(1)
    exported = generate_latest(m.registry).decode()
    import re

    for expr in exprs.values():
        for name in re.findall(r"\b(vigil_[a-z_]+)", expr):
            assert name in exported, name


@pytest.mark.parametrize("name", ["overview", "self", "itself"])
def test_a_model_named_like_vigils_own_dashboards_gets_its_own_uid_and_title(name: str) -> None:
    """A model called "overview" had uid vigil-overview: each provision saved the overview,
    then the model's dashboard over it (the overview was gone, both churned a version per
    run). Titles must differ too: Grafana refuses (or, overwriting, merges) two dashboards
    of one title in a folder."""
    data = copy.deepcopy(SAMPLE["models"][1])
    data["name"] = name
    built = build_all(sample_spec(models=[SAMPLE["models"][0], data]))
    uids, titles = [d["uid"] for d in built], [d["title"] for d in built]
    assert len(set(uids)) == len(uids) and len(set(titles)) == len(titles), (uids, titles)
    assert uids[:2] == [OVERVIEW_UID, VIGIL_UID]
    assert model_dashboard_uid(name) == built[-1]["uid"]  # the links Slack messages carry


def test_a_model_removed_from_the_config_loses_its_provisioned_dashboard(tmp_path: Path) -> None:
    """Grafana's file provider shows every JSON in the folder and refuses to delete a
    provisioned dashboard from the UI: a removed model's file left behind kept its dashboard
    (and its entry in the overview's "Models" links) forever. Files not Vigil's stay."""
    write_provisioning_files(sample_spec(), tmp_path)
    mine = tmp_path / "dashboards" / "team-slo.json"
    mine.write_text(json.dumps({"uid": "team-slo", "title": "Team SLOs", "tags": ["team"]}))
    notes = tmp_path / "dashboards" / "notes.json"
    notes.write_text("not a dashboard")
    gone = tmp_path / "dashboards" / f"{model_dashboard_uid('fraud.scorer')}.json"
    assert gone.exists()
    write_provisioning_files(sample_spec(models=[SAMPLE["models"][0]]), tmp_path)
    assert not gone.exists()
    assert mine.exists() and notes.exists()
    assert sorted(p.name for p in (tmp_path / "dashboards").glob("vigil-*.json")) == [
        "vigil-overview.json", "vigil-recommender.json", "vigil-self.json"]


def test_log_panels_select_streams_on_the_configured_loki_service_label() -> None:
    """Loki 3 / OpenTelemetry label streams `service_name`; `{service=~...}` would show no logs at all."""
    data = copy.deepcopy(SAMPLE)
    data["sources"]["loki"]["service_label"] = "service_name"
    spec = dashboard_specs(parse_config(data))
    d = build_model_dashboard(spec.datasources, model(spec, "recommender"))
    logql = [q.expr for q in panel_queries(d) if q.datasource_type == "loki"]
    assert logql and all('service_name=~"recsys-api"' in e for e in logql), logql
    assert all("{service=~" not in e and "by (service)" not in e for e in logql), logql
    loki_links = re.findall(r"%22expr%22:%22\{(\w+)%3D", json.dumps(d))  # the logs links to Explore
    assert loki_links and set(loki_links) == {"service_name"}
    tempo = next(m for m in datasource_models(spec.datasources) if m["type"] == "tempo")
    assert tempo["jsonData"]["tracesToLogsV2"]["tags"] == [{"key": "service.name", "value": "service_name"}]


def test_a_source_dropped_from_the_config_leaves_grafana_on_the_next_start(tmp_path: Path) -> None:
    """Without `prune: true` Grafana keeps a provisioned data source whose file entry is gone, read-only in the
    UI and pointing at the old URL. Grafana prunes only data sources provisioned from a file with prune set
    (is_prunable), never ones a user made in the UI or API."""
    write_provisioning_files(sample_spec(), tmp_path)
    without_tempo = copy.deepcopy(SAMPLE)
    del without_tempo["sources"]["tempo"]
    write_provisioning_files(dashboard_specs(parse_config(without_tempo)), tmp_path)
    doc = yaml.safe_load((tmp_path / "provisioning" / "datasources" / "vigil.yaml").read_text())
    assert doc["prune"] is True and doc["apiVersion"] == 1
    assert [d["type"] for d in doc["datasources"]] == ["prometheus", "loki"]


def test_the_logs_link_to_explore_opens_in_the_dashboards_own_organization() -> None:
    """Grafana keeps data sources per organization: a link pinned to orgId=1 switched a viewer of a
    dashboard provisioned into another org (a service account's org 2, say) to org 1, where the
    link's Loki uid does not exist ("Data source not found"). `${__org}` is the viewer's org, the
    dashboard's, filled in by Grafana when the link is clicked."""
    urls = [u for d in build_all(sample_spec())
            for u in re.findall(r'"url": "([^"]*)"', json.dumps(d)) if "/explore?" in u]
    assert urls
    for u in urls:
        assert "orgId=${__org}&" in u, u
        assert "orgId=1" not in u, u
