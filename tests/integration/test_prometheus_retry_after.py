"""A 429 (or 503) from Prometheus or a proxy in front of it: its Retry-After is honoured
for range, instant and batched queries, as for Loki and Tempo: a short one is waited out,
a long one (capped) makes Prometheus unavailable at once and unasked until it passes."""
from __future__ import annotations

import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

import monitor.sources.http as http_mod
import monitor.sources.prometheus as prom_mod
from monitor.config import PrometheusConfig
from monitor.sources.errors import SourceUnavailable
from monitor.sources.prometheus import PrometheusSource
from tests.fakes.local_http import LocalHTTPServer

OK = b'{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"__name__":"up"},"values":[[60,"1"]]}]}}'
OK_INSTANT = b'{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[60,"1"]}]}}'


class _Throttling(BaseHTTPRequestHandler):
    retry_after = "1"
    throttled = 1  # how many requests are answered 429 before the real answer
    hits: list[float]

    def _answer(self) -> None:
        self.hits.append(time.monotonic())
        if len(self.hits) <= self.throttled:
            body, status = b"rate limited by proxy", 429
        else:
            body, status = (OK_INSTANT if "/api/v1/query?" in self.path or self.path == "/api/v1/query" else OK), 200
        if self.command == "POST":
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(status)
        if status == 429:
            self.send_header("Retry-After", self.retry_after)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, type[_Throttling]]]:
    handler = type("Handler", (_Throttling,), {"hits": []})
    with LocalHTTPServer(handler) as http:
        yield http.url, handler


@pytest.mark.parametrize("call", ["range", "instant", "batch"])
def test_a_short_retry_after_is_waited_out(server: tuple[str, type[_Throttling]], call: str) -> None:
    url, handler = server
    src = PrometheusSource(PrometheusConfig(url=url, timeout_s=2, retries=2))
    if call == "range":
        assert src.query_range("up", 0, 60)
    elif call == "instant":
        assert src.query("up", 60)
    else:
        assert all(not isinstance(r, Exception) for r in src.query_range_many(["up", "up2"], 0, 60))
    assert len(handler.hits) == 2
    assert handler.hits[1] - handler.hits[0] >= 0.95  # not the 0.1 s backoff


def test_a_long_retry_after_is_not_hammered_and_is_capped(server: tuple[str, type[_Throttling]],
                                                          monkeypatch: Any) -> None:
    url, handler = server
    handler.retry_after, handler.throttled = "86400", 100
    clock = [1000.0]
    monkeypatch.setattr(prom_mod.time, "monotonic", lambda: clock[0])
    src = PrometheusSource(PrometheusConfig(url=url, timeout_s=2, retries=2))
    for _ in range(2):
        with pytest.raises(SourceUnavailable, match="429.*Retry-After") as e:
            src.query_range("up", 0, 60)
        assert e.value.whole_source  # the sweep asks no further batch
    assert len(handler.hits) == 1
    handler.throttled = 0
    clock[0] += http_mod.MAX_RETRY_AFTER_S + 1
    assert src.query_range("up", 0, 60)
