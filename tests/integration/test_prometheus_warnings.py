"""A Prometheus-compatible server (Thanos, Mimir, or Prometheus over remote read) that answers
200 with `warnings` is saying its answer may be partial (a store down): the data is used, and
the warning is logged, not dropped unseen."""
from __future__ import annotations

import logging
from http.server import BaseHTTPRequestHandler

from monitor.config import PrometheusConfig
from monitor.sources.prometheus import PrometheusSource
from tests.fakes.local_http import LocalHTTPServer

PARTIAL = (b'{"status":"success","warnings":["No StoreAPIs matched for this query"],'
           b'"data":{"resultType":"matrix","result":[{"metric":{"__name__":"up"},"values":[[60,"1"]]}]}}')


class _Partial(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        if self.command == "POST":
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(PARTIAL)))
        self.end_headers()
        self.wfile.write(PARTIAL)

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:
        pass


def test_a_partial_answer_is_used_and_its_warning_logged(caplog) -> None:
    caplog.set_level(logging.WARNING, logger="vigil")
    with LocalHTTPServer(_Partial) as http:
        src = PrometheusSource(PrometheusConfig(url=http.url, timeout_s=2, retries=0))
        [series] = src.query_range("up", 0, 120, name="up")
    assert list(series.values) == [1.0]
    [record] = [r for r in caplog.records if "partial" in r.getMessage()]
    assert record.warnings == ["No StoreAPIs matched for this query"] and record.query == "up"
