"""Readiness of a Prometheus-compatible store without Prometheus's management API: Mimir
and Cortex serve the query API under a prefix (`sources.prometheus.url:
http://mimir/prometheus`) and their readiness at `/ready`, so `<url>/-/ready` is a 404.
The probe read that as Prometheus down every interval while every cycle read it fine:
vigil_source_up flapped and /readyz said degraded for good."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from monitor.config import PrometheusConfig
from monitor.sources.errors import SourceStatus, SourceUnavailable
from monitor.sources.prometheus import PrometheusSource
from tests.fakes import FakeServer


class _Mimir(FakeServer):
    def __init__(self, answering: bool = True) -> None:
        super().__init__()
        self.answering = answering

    def route(self, path: str, q: dict[str, str], headers: dict[str, str]) -> Any:
        if path == "/ready":
            return self.text(200, "ready")
        if path == "/prometheus/api/v1/query" and self.answering:
            return self.json({"status": "success", "data": {"resultType": "vector", "result": [
                {"metric": {}, "value": [1795259520, "1"]}]}})
        if path == "/prometheus/api/v1/query":
            return self.text(503, "no queriers")
        return self.text(404, "404 page not found")


def test_a_store_without_the_ready_endpoint_is_up_when_it_answers_a_query() -> None:
    with _Mimir() as server:
        state = PrometheusSource(PrometheusConfig(url=f"{server.url}/prometheus", retries=0)).ready()
    assert state.status is SourceStatus.UP, state
    assert [r["path"] for r in server.requests] == ["/prometheus/-/ready", "/prometheus/api/v1/query"]


def test_a_store_without_the_ready_endpoint_that_answers_no_query_is_down() -> None:
    with _Mimir(answering=False) as server:
        state = PrometheusSource(PrometheusConfig(url=f"{server.url}/prometheus", retries=0)).ready()
    assert state.status is SourceStatus.DOWN and "503" in state.detail and "no queriers" in state.detail, state


class _TenantMimir(FakeServer):
    """Mimir with multitenancy_enabled (its default): a request without X-Scope-OrgID is
    401 `no org id`, and a tenant sees its own series only."""

    def route(self, path: str, q: dict[str, str], headers: dict[str, str]) -> Any:
        if not headers.get("X-Scope-OrgID"):
            return self.text(401, "no org id")
        if path == "/prometheus/api/v1/query_range" and headers["X-Scope-OrgID"] == "ml-prod":
            return self.json({"status": "success", "data": {"resultType": "matrix", "result": [
                {"metric": {"__name__": "up"}, "values": [[1795259520, "1"], [1795259580, "1"]]}]}})
        return self.text(404, "404 page not found")


def test_a_multi_tenant_mimir_is_read_with_the_configured_tenant() -> None:
    """Mimir (and Cortex) answer every request without a tenant 401 `no org id`, and
    sources.prometheus took no tenant: Prometheus was down every cycle, the error blaming
    the bearer token. sources.prometheus.tenant is sent as X-Scope-OrgID, as Loki's and
    Tempo's are, and the provisioned Grafana data source sends it too."""
    from dashboards.datasources import datasource_models
    from monitor.grafana.specs import datasources_spec
    from tests.helpers_vigil import make_config

    with _TenantMimir() as server:
        url = f"{server.url}/prometheus"
        got = PrometheusSource(PrometheusConfig(url=url, tenant="ml-prod", retries=0)).query_range("up", 0, 60)
        assert [list(s.values) for s in got] == [[1.0, 1.0]]
        with pytest.raises(SourceUnavailable, match="no org id.*sources.prometheus.tenant"):
            PrometheusSource(PrometheusConfig(url=url, retries=0)).query_range("up", 0, 60)
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        cfg = make_config(Path(tmp))
    cfg = cfg.model_copy(update={"sources": cfg.sources.model_copy(update={
        "prometheus": PrometheusConfig(url="http://mimir/prometheus", tenant="ml-prod")})})
    prom = next(d for d in datasource_models(datasources_spec(cfg)) if d["type"] == "prometheus")
    assert prom["jsonData"]["httpHeaderName1"] == "X-Scope-OrgID"
    assert prom["secureJsonData"] == {"httpHeaderValue1": "ml-prod"}
