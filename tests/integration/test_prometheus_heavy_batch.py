"""A batch that times out because it is heavy (many queries in one request) no longer
costs every query in it: its queries are asked alone, within a bound, while a hung
Prometheus is still not asked once per query."""
from __future__ import annotations

import json
import re
import time
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pytest

from monitor.config import PrometheusConfig
from monitor.sources.errors import SourceUnavailable
from monitor.sources.prometheus import BATCH_LABEL, PrometheusSource
from tests.fakes.local_http import LocalHTTPServer
from tests.fixtures_mlflow import SilentServer

HEAVY = 4  # a request with more queries than this takes longer than the client's timeout


class _Weighted(BaseHTTPRequestHandler):
    hits: list[int]

    def _answer(self) -> None:
        if self.command == "POST":
            form = urllib.parse.parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
        else:
            form = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        query = form["query"][0]
        idx = re.findall(rf'"{BATCH_LABEL}", "(\d+)"', query)
        self.hits.append(len(idx) or 1)
        if len(idx) > HEAVY:
            time.sleep(0.8)  # evaluation too slow for the client's 0.3 s
        rows = [{"metric": {BATCH_LABEL: i} if idx else {}, "values": [[60, "1"]]} for i in (idx or ["-"])]
        body = json.dumps({"status": "success", "data": {"resultType": "matrix", "result": rows}}).encode()
        try:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass  # the client gave up

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def weighted() -> Iterator[tuple[str, type[_Weighted]]]:
    handler = type("Handler", (_Weighted,), {"hits": []})
    with LocalHTTPServer(handler) as http:
        yield http.url, handler


def test_a_heavy_batch_that_times_out_has_its_queries_answered_alone(weighted: tuple[str, type[_Weighted]]
                                                                         ) -> None:
    url, handler = weighted
    src = PrometheusSource(PrometheusConfig(url=url, timeout_s=0.3, retries=0, step=15))
    got = src.query_range_many([f'up{{job="{i}"}}' for i in range(16)], 0, 60)
    assert [isinstance(g, list) for g in got] == [True] * 16  # answers, no errors
    assert all(len(g) == 1 for g in got if isinstance(g, list))
    assert len(handler.hits) == 17  # the batch, then each query alone


def test_a_hung_prometheus_costs_a_bounded_split_not_a_request_per_query() -> None:
    server = SilentServer()
    try:
        src = PrometheusSource(PrometheusConfig(url=server.url, timeout_s=0.3, retries=0, step=15))
        began = time.monotonic()
        got = src.query_range_many([f'up{{job="{i}"}}' for i in range(130)], 0, 600)  # three batches
        took = time.monotonic() - began
    finally:
        server.close()
    assert all(isinstance(g, SourceUnavailable) and not g.whole_source for g in got)
    assert took < 3 * 0.3 + 2 * src.worst_case_s + 0.5, took
