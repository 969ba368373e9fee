"""Readiness of a Prometheus-compatible store without Prometheus's management API: Mimir
and Cortex serve the query API under a prefix (`sources.prometheus.url:
http://mimir/prometheus`) and their readiness at `/ready`, so `<url>/-/ready` is a 404.
The probe read that as Prometheus down every interval while every cycle read it fine:
vigil_source_up flapped and /readyz said degraded for good."""
from __future__ import annotations

from typing import Any

from monitor.config import PrometheusConfig
from monitor.sources.errors import SourceStatus
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
