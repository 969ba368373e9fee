"""A Prometheus-compatible server that answers 200 but says its answer may be partial (Thanos
or Mimir: `warnings`, a store or querier missed; a VictoriaMetrics cluster: `"isPartial": true`,
a vmstorage node did not answer): the data is used, the warning is logged, and every Series
read from it carries why (`Series.partial`), so the cycle can say so and not act on it alone.
Prometheus's own notes on a query ("PromQL info: ...") are no partial answer."""
from __future__ import annotations

import json
import logging
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from detectors.records import partial_of
from monitor.config import PrometheusConfig
from monitor.cycle.prefetch import Prefetched
from monitor.sources.prometheus import PrometheusSource
from tests.fakes.local_http import LocalHTTPServer
from tests.fakes.partial_prometheus import VICTORIA

ROW = {"metric": {"__name__": "up"}, "values": [[60, "1"]]}


def _server(extra: dict[str, Any], rows: list[dict[str, Any]] | None = None) -> LocalHTTPServer:
    body = json.dumps({"status": "success", **extra,
                       "data": {"resultType": "matrix", "result": [ROW] if rows is None else rows}}).encode()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            if self.command == "POST":
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

        def log_message(self, *args: object) -> None:
            pass

    return LocalHTTPServer(Handler)


def _source(url: str) -> PrometheusSource:
    return PrometheusSource(PrometheusConfig(url=url, timeout_s=2, retries=0))


def test_a_partial_answer_is_used_its_warning_logged_and_its_series_marked(caplog) -> None:
    caplog.set_level(logging.WARNING, logger="vigil")
    with _server({"warnings": ["No StoreAPIs matched for this query"]}) as http:
        [series] = _source(http.url).query_range("up", 0, 120, name="up")
    assert list(series.values) == [1.0]
    assert series.partial == "No StoreAPIs matched for this query"
    [record] = [r for r in caplog.records if "partial" in r.getMessage()]
    assert "No StoreAPIs matched" in record.warnings and record.query == "up"


@pytest.mark.parametrize(("extra", "partial"), [
    (VICTORIA, "isPartial: a storage node did not answer"),
    ({"isPartial": False}, ""),
    ({"warnings": ['PromQL info: metric might not be a counter, name does not end in _total: "up"']}, ""),
    ({}, ""),
], ids=["vm-partial", "vm-whole", "promql-note", "plain"])
def test_what_says_an_answer_is_partial(extra: dict[str, Any], partial: str) -> None:
    with _server(extra) as http:
        src = _source(http.url)
        [ranged] = src.query_range("up", 0, 120, name="up")
        [instant] = src.query("up", 60)
    assert (ranged.partial, instant.partial) == (partial, partial)


def test_each_query_of_a_batched_partial_answer_is_marked() -> None:
    """The answer says it missed a store, not for which of the batched queries: all are marked."""
    rows = [{"metric": {"__name__": n, "__vigil_q": str(i)}, "values": [[60, "1"]]} for i, n in enumerate("ab")]
    with _server(VICTORIA, rows) as http:
        got = _source(http.url).query_range_many(["a", "b"], 0, 120)
    assert [[s.partial for s in r] for r in got if isinstance(r, list)] == [["isPartial: a storage node did not "
                                                                             "answer"]] * 2


def test_a_partial_answer_with_no_series_still_says_it_is_partial() -> None:
    """The only store holding a signal is down: no series and a warning. [] alone reads as
    "matched nothing", which an optional signal takes as nothing wrong; the answer keeps why,
    also through a batch and a sweep's prefetched copy of it."""
    why = "isPartial: a storage node did not answer"
    with _server(VICTORIA, rows=[]) as http:
        src = _source(http.url)
        ranged, instant = src.query_range("up", 0, 120), src.query("up", 60)
        batched = src.query_range_many(["a", "b", "c"], 0, 120)
        cached = Prefetched(120.0, ranges={("a", 0.0, 120.0): batched[0]}).prometheus(src)
        via_cache = [cached.query_range("a", 0.0, 120.0, name="ctr"), cached.query_range("up", 0.0, 120.0)]
    assert [partial_of(r) for r in [ranged, instant, *via_cache]] == [why] * 4
    assert [partial_of(r) if isinstance(r, list) else r for r in batched] == [why] * 3
