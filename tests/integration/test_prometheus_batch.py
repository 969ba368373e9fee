"""Batched range queries against a real Prometheus: each query's answer is the one it gets
alone; a bad query fails alone; a dead Prometheus is one error per query, quickly."""
from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from monitor.config import PrometheusConfig
from monitor.sources.errors import QueryError, SourceUnavailable
from monitor.sources.prometheus import PrometheusSource
from tests.fixtures_mlflow import closed_port_url
from tests.fixtures_prometheus import PromData

QUERIES = [
    "model_latency_seconds",  # two series, with __name__
    'model_latency_seconds{pod="recsys-1"} * 2',  # an expression: no __name__
    'vllm:gpu_cache_usage_perc{model_name="llama \\"8b\\""}',
    "sum(rate(http_requests_total[1m]))",
    'histogram_quantile(0.9, sum by (le) (rate(request_duration_seconds_bucket{service="recsys"}[1m])))',
    "no_such_metric",  # no data: []
    "odd_values",
]


@pytest.fixture(scope="module")
def source(prometheus_url: str) -> Iterator[PrometheusSource]:
    src = PrometheusSource(PrometheusConfig(url=prometheus_url, timeout_s=5, retries=1, step=15))
    yield src
    src.close()


def _key(series: list) -> list:
    return sorted((sorted(s.labels.items()), s.name, s.timestamps.tolist(), np.nan_to_num(s.values, nan=-1.0,
                   posinf=-2.0, neginf=-3.0).tolist()) for s in series)


@pytest.mark.integration
def test_each_batched_query_answers_what_it_answers_alone(source: PrometheusSource,
                                                          prom_data: tuple[PromData, Path]) -> None:
    d, _ = prom_data
    start, end = d.t0, d.end
    batched = source.query_range_many(QUERIES, start, end)
    assert len(batched) == len(QUERIES)
    for q, got in zip(QUERIES, batched, strict=True):
        assert not isinstance(got, Exception), q
        assert _key(got) == _key(source.query_range(q, start, end)), q
    assert batched[QUERIES.index("no_such_metric")] == []
    assert len(batched[0]) == 2 and all(s.labels.get("__name__") == "model_latency_seconds" for s in batched[0])


@pytest.mark.integration
def test_a_rejected_query_fails_alone_and_its_neighbours_still_answer(source: PrometheusSource,
                                                                    prom_data: tuple[PromData, Path]) -> None:
    d, _ = prom_data
    queries = ["model_latency_seconds", "sum(rate(model_latency_seconds))", "errors_ratio"]
    got = source.query_range_many(queries, d.t0, d.end)
    assert isinstance(got[1], QueryError) and "range" in got[1].reason.lower()
    assert len(got[0]) == 2 and len(got[2]) == 1  # type: ignore[arg-type]


@pytest.mark.integration
def test_many_queries_are_split_into_bounded_requests(source: PrometheusSource,
                                                      prom_data: tuple[PromData, Path]) -> None:
    d, _ = prom_data
    queries = [f'model_latency_seconds{{pod="recsys-{i % 2}"}} + {i}' for i in range(150)]
    got = source.query_range_many(queries, d.t0, d.end)
    for i, series in enumerate(got):
        assert not isinstance(series, Exception)
        assert len(series) == 1
        np.testing.assert_allclose(series[0].values, d.latency[f"recsys-{i % 2}"] + i)


def test_a_dead_prometheus_is_one_unavailable_per_query_without_a_retry_each() -> None:
    src = PrometheusSource(PrometheusConfig(url=closed_port_url(), timeout_s=1, retries=1, step=15))
    began = time.monotonic()
    got = src.query_range_many([f"up{{job=\"{i}\"}}" for i in range(100)], 0, 600)
    assert all(isinstance(g, SourceUnavailable) for g in got)
    assert time.monotonic() - began < 5  # one request's retries for the batch, not 100
