"""PrometheusSource against a real Prometheus (backfilled with promtool) and, for the
failure paths a real server cannot produce on demand, tiny local HTTP/TCP servers."""
from __future__ import annotations

import os
import re
import socket
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import numpy as np
import pytest

from monitor.config import PrometheusConfig
from monitor.replay.local_prometheus import LocalPrometheus, LocalPrometheusError, PrometheusNotInstalled, find_binaries
from monitor.sources.errors import QueryError, SourceStatus, SourceUnavailable
from monitor.sources.prometheus import MAX_CHUNKS, MAX_POINTS_PER_REQUEST, PrometheusSource
from tests.fakes.local_http import LocalHTTPServer
from tests.fixtures_prometheus import PromData


@pytest.fixture(scope="module")
def source(prometheus_url: str) -> Iterator[PrometheusSource]:
    src = PrometheusSource(PrometheusConfig(url=prometheus_url, timeout_s=5, retries=1, step=15))
    yield src
    src.close()


def _expected_quantile(q: float, bounds: list[float], increments: list[int]) -> float:
    """Prometheus's histogram_quantile: linear interpolation inside the bucket holding the rank."""
    cum = np.cumsum(increments, dtype=np.float64)
    rank = q * cum[-1]
    b = int(np.searchsorted(cum, rank, side="left"))
    assert b < len(bounds), "the expected quantile must fall in a finite bucket"
    lower = 0.0 if b == 0 else bounds[b - 1]
    below = 0.0 if b == 0 else cum[b - 1]
    return lower + (bounds[b] - lower) * (rank - below) / (cum[b] - below)


# --------------------------------------------------------------------------- real Prometheus
@pytest.mark.integration
def test_range_query_returns_exact_values_at_exact_timestamps(
    source: PrometheusSource, prom_data: tuple[PromData, Path]
) -> None:
    d, _ = prom_data
    got = source.query_range('model_latency_seconds{service="recsys"}', d.t0, d.end)
    assert sorted(s.labels["pod"] for s in got) == ["recsys-0", "recsys-1"]
    for s in got:
        assert s.name == "model_latency_seconds"
        assert s.labels["service"] == "recsys"
        np.testing.assert_array_equal(s.timestamps, d.timestamps)
        np.testing.assert_array_equal(s.values, d.latency[s.labels["pod"]])


@pytest.mark.integration
def test_metric_name_with_colon_and_escaped_label_round_trips(
    source: PrometheusSource, prom_data: tuple[PromData, Path]
) -> None:
    d, _ = prom_data
    (s,) = source.query_range("vllm:gpu_cache_usage_perc", d.t0, d.end, name="kv_cache")
    assert s.name == "kv_cache"
    assert s.labels["model_name"] == 'llama "8b"'
    np.testing.assert_array_equal(s.values, d.kv_cache)


@pytest.mark.integration
def test_rate_over_counter(source: PrometheusSource, prom_data: tuple[PromData, Path]) -> None:
    d, _ = prom_data
    (s,) = source.query_range("rate(http_requests_total[1m])", d.t0 + 60, d.end, 60)
    assert s.name == "rate(http_requests_total[1m])"  # no __name__ after rate(): the query names it
    assert s.labels == {"service": "recsys", "code": "200"}
    assert len(s.values) == int((d.end - d.t0 - 60) // 60) + 1
    np.testing.assert_allclose(s.values, d.counter_rate, rtol=1e-9)


@pytest.mark.integration
def test_histogram_quantile(source: PrometheusSource, prom_data: tuple[PromData, Path]) -> None:
    d, _ = prom_data
    q = "histogram_quantile(0.99, sum by (le) (rate(request_duration_seconds_bucket[1m])))"
    (s,) = source.query(q, d.end, name="p99")
    assert s.name == "p99" and len(s.values) == 1
    assert s.values[0] == pytest.approx(_expected_quantile(0.99, d.hist_bounds, d.hist_increments), rel=1e-9)
    (p50,) = source.query(q.replace("0.99", "0.5"), d.end)
    assert p50.values[0] == pytest.approx(_expected_quantile(0.5, d.hist_bounds, d.hist_increments), rel=1e-9)


@pytest.mark.integration
def test_no_data_is_empty_and_zeros_are_not(source: PrometheusSource, prom_data: tuple[PromData, Path]) -> None:
    d, _ = prom_data
    assert source.query_range('model_latency_seconds{service="absent"}', d.t0, d.end) == []
    assert source.query('model_latency_seconds{service="absent"}', d.end) == []
    # Before the data starts there is nothing either, even for metrics that exist.
    assert source.query_range("errors_ratio", d.t0 - 3600, d.t0 - 1800) == []
    (zeros,) = source.query_range("errors_ratio", d.t0, d.end)
    assert len(zeros.values) == len(d.timestamps) and not zeros.empty
    assert np.all(zeros.values == 0.0)


@pytest.mark.integration
def test_nan_and_infinities_parse_to_floats(source: PrometheusSource, prom_data: tuple[PromData, Path]) -> None:
    d, _ = prom_data
    (s,) = source.query_range("odd_values", d.t0, d.t0 + 4 * d.step)
    np.testing.assert_array_equal(s.values, d.special)  # NaN == NaN for assert_array_equal


@pytest.mark.integration
def test_instant_query_scalar_and_raw_samples(source: PrometheusSource, prom_data: tuple[PromData, Path]) -> None:
    d, _ = prom_data
    (scalar,) = source.query("scalar(sum(errors_ratio)) + 2", d.end)
    assert scalar.labels == {} and scalar.values.tolist() == [2.0] and scalar.timestamps.tolist() == [d.end]
    # 50 s, not 1m: whether a sample exactly at end - 1m is inside changed in Prometheus 3.
    (raw,) = source.query('model_latency_seconds{pod="recsys-0"}[50s]', d.end)
    np.testing.assert_array_equal(raw.timestamps, d.timestamps[-4:])
    np.testing.assert_array_equal(raw.values, d.latency["recsys-0"][-4:])


@pytest.mark.integration
def test_long_range_is_split_and_stitched_exactly(
    source: PrometheusSource, prom_data: tuple[PromData, Path]
) -> None:
    d, _ = prom_data
    assert len(d.long_timestamps) > 2 * MAX_POINTS_PER_REQUEST  # three requests
    (s,) = source.query_range("long_gauge", d.long_timestamps[0], d.long_timestamps[-1], 1.0)
    np.testing.assert_array_equal(s.timestamps, d.long_timestamps)
    np.testing.assert_array_equal(s.values, d.long_values)


@pytest.mark.integration
def test_bad_query_raises_query_error_with_prometheus_message(
    source: PrometheusSource, prom_data: tuple[PromData, Path]
) -> None:
    d, _ = prom_data
    with pytest.raises(QueryError, match="unexpected end of input inside braces") as e:
        source.query_range('model_latency_seconds{service="recsys"', d.t0, d.end)
    assert e.value.query == 'model_latency_seconds{service="recsys"'
    with pytest.raises(QueryError, match="parse error"):
        source.query("sum(", d.end)


def test_step_too_fine_for_range_is_refused_naming_the_step() -> None:
    src = PrometheusSource(PrometheusConfig(url="http://127.0.0.1:9"))
    span = 86400 * 365 / 10
    with pytest.raises(QueryError, match=r"at step 1 s ") as e:
        src.query_range("up", 0, span, 1)  # over 3M points: refused before any request
    suggested = float(re.search(r"use a step of at least (\d+) s", e.value.reason).group(1))
    assert span / suggested <= MAX_CHUNKS * MAX_POINTS_PER_REQUEST < span / (suggested - 1)
    with pytest.raises(QueryError, match="before start"):
        src.query_range("up", 100, 50)


@pytest.mark.integration
def test_stopped_prometheus_is_unavailable_within_the_bound(tmp_path: Path) -> None:
    try:
        find_binaries()
    except PrometheusNotInstalled as e:
        pytest.skip(str(e))
    with LocalPrometheus(None, tmp_path) as prom:
        assert prom.url is not None
        src = PrometheusSource(PrometheusConfig(url=prom.url, timeout_s=1, retries=2))
        up = src.ready()
        assert up.status is SourceStatus.UP and up.url == prom.url
        assert src.query("vector(1)", time.time())[0].values.tolist() == [1.0]
    assert not prom.running
    prom.stop()  # idempotent
    down = src.ready()
    assert down.status is SourceStatus.DOWN and "refused" in down.detail
    t0 = time.perf_counter()
    with pytest.raises(SourceUnavailable, match="connection refused.*3 attempts"):
        src.query_range("up", time.time() - 600, time.time())
    assert time.perf_counter() - t0 <= src.worst_case_s


# --------------------------------------------------------------------------- failure servers
class _Recorder(BaseHTTPRequestHandler):
    status = 503
    body = b'{"status":"error","errorType":"unavailable","error":"overloaded"}'
    hits: list[dict[str, str]]

    def do_GET(self) -> None:
        self.hits.append(dict(self.headers))
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[tuple[str, type[_Recorder]]]:
    handler = type("Handler", (_Recorder,), {"hits": []})
    with LocalHTTPServer(handler) as http:
        yield http.url, handler


def test_5xx_is_retried_then_unavailable_with_the_server_message(http_server: tuple[str, type[_Recorder]]) -> None:
    url, handler = http_server
    src = PrometheusSource(PrometheusConfig(url=url, timeout_s=2, retries=2))
    with pytest.raises(SourceUnavailable, match="HTTP 503: overloaded") as e:
        src.query_range("up", 0, 60)
    assert len(handler.hits) == 3
    assert e.value.url == url


def test_auth_failure_is_not_retried_and_token_is_sent(
    http_server: tuple[str, type[_Recorder]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, handler = http_server
    handler.status, handler.body = 401, b"Unauthorized"
    monkeypatch.setenv("PROM_TOKEN", "s3cret")
    src = PrometheusSource(PrometheusConfig(url=url, retries=3, bearer_token="${PROM_TOKEN}"))
    with pytest.raises(SourceUnavailable, match="HTTP 401.*bearer_token") as e:
        src.query("up", 0)
    assert "s3cret" not in str(e.value)
    assert len(handler.hits) == 1
    assert handler.hits[0]["Authorization"] == "Bearer s3cret"
    down = src.ready()
    assert down.status is SourceStatus.DOWN and "401" in down.detail


def test_unprocessable_query_is_query_error(http_server: tuple[str, type[_Recorder]]) -> None:
    url, handler = http_server
    handler.status = 422
    handler.body = b'{"status":"error","errorType":"execution","error":"many-to-many matching not allowed"}'
    src = PrometheusSource(PrometheusConfig(url=url, retries=3))
    with pytest.raises(QueryError, match="many-to-many"):
        src.query_range("a / b", 0, 60)
    assert len(handler.hits) == 1


def test_silent_server_times_out_within_the_bound() -> None:
    # The kernel completes the TCP handshake for a listening socket nobody accepts from,
    # so the client connects and then waits for a reply that never comes.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        src = PrometheusSource(PrometheusConfig(url=url, timeout_s=0.2, retries=2))
        t0 = time.perf_counter()
        with pytest.raises(SourceUnavailable, match="timed out"):
            src.query_range("up", 0, 60)
        elapsed = time.perf_counter() - t0
    assert 3 * 0.2 <= elapsed <= src.worst_case_s + 0.5


# --------------------------------------------------------------------------- the runner
def test_runner_says_how_to_install_when_binaries_are_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(PrometheusNotInstalled, match="apt-get install -y --no-install-recommends prometheus"):
        LocalPrometheus(None, tmp_path).start()


@pytest.mark.integration
def test_runner_reports_promtool_error_for_a_broken_file(tmp_path: Path) -> None:
    try:
        find_binaries()
    except PrometheusNotInstalled as e:
        pytest.skip(str(e))
    om = tmp_path / "metrics.om"
    om.write_text("# TYPE m gauge\nm 1 1700000000\n")  # no "# EOF"
    prom = LocalPrometheus(om, tmp_path / "work")
    with pytest.raises(LocalPrometheusError, match="(?s)promtool could not backfill.*does not end with # EOF"):
        prom.start()
    assert not prom.running


@pytest.mark.integration
def test_runner_reports_a_taken_port_and_stops_only_its_own_process(tmp_path: Path) -> None:
    try:
        find_binaries()
    except PrometheusNotInstalled as e:
        pytest.skip(str(e))
    with LocalPrometheus(None, tmp_path / "a") as first:
        assert first.port is not None
        second = LocalPrometheus(None, tmp_path / "b", port=first.port)
        with pytest.raises(LocalPrometheusError, match="address already in use"):
            second.start(timeout_s=10)
        second.stop()
        assert first.running  # the failed second start did not touch the first server
        pid = first._proc.pid if first._proc else -1
    assert not first.running
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
