"""Proof that no generated panel shows "No data": every PromQL expression in every
dashboard (and every variable's label_values query) runs against a real Prometheus
holding data shaped like production and returns finite values without error.

The data is generated from the same config the dashboards are: the serving, GPU,
KPI and vigil_* series a deployment of that config would scrape.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from dashboards.provisioning import build_all
from monitor.config import VigilConfig
from monitor.cycle.detect_drift import EXPORTED_STATISTICS as DRIFT_STATISTICS
from monitor.grafana.specs import dashboard_specs
from monitor.replay.local_prometheus import LocalPrometheus, PrometheusNotInstalled, find_binaries
from monitor.replay.openmetrics import OpenMetricsWriter

try:
    from tests.dashboards_queries import finite_values, label_values, run_panel_queries, variable_queries
    from tests.unit.dashboards.test_dashboards_build import sample_config
except ImportError:  # pytest put tests/ on sys.path, not the repo root
    from dashboards_queries import finite_values, label_values, run_panel_queries, variable_queries
    from test_dashboards_build import sample_config

pytestmark = pytest.mark.integration

END = 1_790_000_000.0
STEP = 30.0
N = 241  # two hours
RANGE = "1h"
BOUNDS = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5]


def write_fixture(config: VigilConfig, path: Path) -> None:
    """OpenMetrics for every series the config's dashboards read, as Prometheus would have scraped them."""
    rng = np.random.default_rng(11)
    ts = END - (N - 1) * STEP + np.arange(N) * STEP
    k = np.arange(N, dtype=np.float64)
    w = OpenMetricsWriter()
    base = {"namespace": "ml", "env": "prod"}

    def counter(rate_per_s: float) -> np.ndarray:
        return np.round(np.cumsum(rng.poisson(rate_per_s * STEP, N)).astype(float), 0)

    for m in config.models:
        for svc in m.services:
            pod = f"{svc}-0"
            lab = {**base, "service": svc, "pod": pod}
            per_step = np.array([40, 30, 20, 6, 3, 1, 0.5]) * 4
            cum = np.cumsum(per_step)[None, :] * k[:, None]
            w.add_histogram("http_request_duration_seconds", lab, ts, BOUNDS, cum[:, :-1], sums=k * 30.0,
                            counts=cum[:, -1])
            w.add("http_requests_total", {**lab, "code": "200"}, ts, counter(20), type="counter")
            w.add("http_requests_total", {**lab, "code": "500"}, ts, counter(0.3), type="counter")
        if m.gpu:
            pod = f"{m.services[0]}-0"
            gl = {**base, "gpu": "0", "Hostname": "gpu-node-1", "pod": pod}
            w.add("DCGM_FI_DEV_GPU_UTIL", gl, ts, np.round(rng.uniform(40, 99, N)))
            used = np.round(rng.uniform(30_000, 78_000, N))
            w.add("DCGM_FI_DEV_FB_USED", gl, ts, used)
            w.add("DCGM_FI_DEV_FB_FREE", gl, ts, 81_559 - used)
            w.add("vllm:gpu_cache_usage_perc", {**base, "pod": pod}, ts, np.round(rng.uniform(0.1, 0.99, N), 3))
            w.add("vllm:num_requests_waiting", {**base, "pod": pod}, ts, rng.poisson(3, N).astype(float))
        for kpi in m.kpis:
            for metric in re.findall(r"\b(recsys_\w+_total)\b", kpi.query):
                w.add(metric, {**base, "model": m.name}, ts, counter(50 if "impr" in metric else 3), type="counter")

    # Vigil's own /metrics, scraped: names and labels as in monitor/metrics.py.
    vigil = {"job": "vigil", "instance": "vigil:8080"}
    for m in config.models:
        ml = {**vigil, "model": m.name}
        for f in [x.name for x in m.features] + ([m.prediction_column] if m.prediction_column else []):
            for stat in DRIFT_STATISTICS:
                w.add("vigil_feature_drift", {**ml, "feature": f, "statistic": stat}, ts,
                      np.round(rng.uniform(0, 0.3, N), 4))
        for kpi in m.kpis:
            w.add("vigil_kpi_value", {**ml, "kpi": kpi.name}, ts, np.round(rng.uniform(0.04, 0.06, N), 4))
            w.add("vigil_kpi_baseline", {**ml, "kpi": kpi.name}, ts, np.full(N, 0.05))
        w.add("vigil_model_state", ml, ts, rng.integers(0, 3, N).astype(float))
        for sev in ("warning", "critical"):
            w.add("vigil_incidents_open", {**ml, "severity": sev}, ts, rng.integers(0, 2, N).astype(float))
            w.add("vigil_incidents_total", {**ml, "severity": sev}, ts, counter(0.001), type="counter")
        for status in ("done", "dry_run", "refused", "failed"):
            w.add("vigil_rollbacks_total", {**ml, "status": status}, ts, counter(0.0005), type="counter")
        w.add("vigil_samples_total", ml, ts, counter(100), type="counter")
        w.add("vigil_cycle_errors_total", ml, ts, counter(0.001), type="counter")
        w.add("vigil_last_successful_cycle_timestamp_seconds", ml, ts, ts - 30)
        w.add("vigil_consecutive_failed_cycles", ml, ts, np.zeros(N))
        for kind in ("feature_drift", "kpi_drop", "slo_breach"):
            w.add("vigil_findings_total", {**ml, "kind": kind}, ts, counter(0.01), type="counter")
        vb = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]
        per = np.array([0, 1, 2, 4, 2, 1, 0, 0, 0, 0, 0, 0], dtype=float) * 0.5  # 2 cycles per 30 s step
        cum = np.cumsum(per)[None, :] * k[:, None]
        w.add_histogram("vigil_cycle_duration_seconds", ml, ts, vb, cum[:, :-1], sums=k * 0.4, counts=cum[:, -1])
    for notifier in ("slack", "grafana"):
        for status in ("delivered", "retry", "failed"):
            w.add("vigil_notifications_total", {**vigil, "notifier": notifier, "status": status}, ts,
                  counter(0.01), type="counter")
    for source in ("prometheus", "loki", "tempo", "mlflow"):
        w.add("vigil_source_up", {**vigil, "source": source}, ts, np.ones(N))
    w.add("vigil_outbox_pending", vigil, ts, rng.integers(0, 5, N).astype(float))
    w.add("vigil_audit_checkpoint_timestamp_seconds", vigil, ts, ts - 60)
    w.write(path)


@pytest.fixture(scope="module")
def config() -> VigilConfig:
    return sample_config()


@pytest.fixture(scope="module")
def prometheus(config: VigilConfig, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    try:
        find_binaries()
    except PrometheusNotInstalled as e:
        pytest.skip(str(e))
    om = tmp_path_factory.mktemp("om") / "metrics.om"
    write_fixture(config, om)
    with LocalPrometheus(om, tmp_path_factory.mktemp("prom")) as prom:
        assert prom.url
        with httpx.Client(base_url=prom.url, timeout=10) as client:
            yield client


def test_every_promql_panel_query_returns_data(prometheus: httpx.Client, config: VigilConfig) -> None:
    runs = run_panel_queries(prometheus, build_all(dashboard_specs(config)), start=END - 3600, end=END, step=60,
                             rate_interval="5m", interval="1m", range_=RANGE)
    failures = [p for p in (r.problem() for r in runs) if p]
    assert not failures, "\n".join(failures)
    # 38 today (overview 8, recommender 20, fraud.scorer 10): far fewer means panels went missing.
    assert len(runs) >= 30, len(runs)


def test_every_variable_query_offers_values(prometheus: httpx.Client, config: VigilConfig) -> None:
    """Grafana turns label_values(sel, label) into /api/v1/label/<label>/values?match[]=sel."""
    checked = 0
    for d in build_all(dashboard_specs(config)):
        for v in variable_queries(d):
            assert label_values(prometheus, v, END - 3600, END), f"{v.dashboard} variable {v.name}: no values"
            checked += 1
    assert checked == 8  # env, pod and feature for each of the two models; $model on the overview and vigil-self


def test_the_proof_can_fail(prometheus: httpx.Client) -> None:
    """The same check reports a misspelt metric as "No data" and a parse error as an error."""
    resp = prometheus.post("/api/v1/query_range", data={"query": 'sum(rate(http_request_total{service="x"}[5m]))',
                                                         "start": END - 3600, "end": END, "step": 60})
    assert resp.status_code == 200 and not finite_values(resp.json()["data"]["result"])
    bad = prometheus.post("/api/v1/query", data={"query": "sum(rate(x[5m])", "time": END})
    assert bad.status_code == 400 and bad.json()["errorType"] == "bad_data"


def test_audit_checkpoint_age_shows_never_before_the_first_checkpoint(prometheus: httpx.Client,
                                                                      config: VigilConfig) -> None:
    """Every process exports the checkpoint gauge at 0 until it writes one: the panel must not
    read that as a checkpoint at the epoch (time() - 0 = ~56 years) but show "never"."""
    vigil = next(d for d in build_all(dashboard_specs(config)) if d["uid"] == "vigil-self")
    panel = next(p for p in vigil["panels"] if p.get("title") == "Audit checkpoint age")
    expr = panel["targets"][0]["expr"]
    assert panel["fieldConfig"]["defaults"].get("noValue") == "never"
    none_yet = expr.replace("vigil_audit_checkpoint_timestamp_seconds", "vector(0)")
    resp = prometheus.post("/api/v1/query", data={"query": none_yet, "time": END})
    assert resp.status_code == 200 and resp.json()["data"]["result"] == [], resp.json()
    recent = prometheus.post("/api/v1/query", data={"query": expr, "time": END}).json()["data"]["result"]
    assert [round(float(r["value"][1])) for r in recent] == [60]  # written a minute ago: 60 s
