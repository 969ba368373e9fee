"""LokiSource against a local server that follows the Loki contract."""
from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler

import pytest

try:
    from tests.fakes.local_http import LocalHTTPServer
    from tests.fakes.loki_server import FakeLoki, Stream
except ImportError:  # pytest put tests/ on sys.path, not the repo root
    from fakes.local_http import LocalHTTPServer
    from fakes.loki_server import FakeLoki, Stream
from monitor.config import LokiConfig
from monitor.sources.errors import QueryError, SourceStatus, SourceUnavailable
from monitor.sources.loki import LokiSource

T0 = 1_795_259_340_000_000_000  # ns


def _streams() -> list[Stream]:
    # 23 entries over two streams, with several lines sharing one nanosecond so that
    # a page boundary falls inside a run of equal timestamps.
    a = Stream({"service": "checkout", "pod": "checkout-1", "level": "error"})
    b = Stream({"service": "payments", "pod": "payments-7"})
    for i in range(12):
        a.entries.append((T0 + (i // 3) * 1_000_000_000, f"checkout line {i}", {"trace_id": f"{i:032x}"}))
    for i in range(11):
        b.entries.append((T0 + i * 500_000_000, f"payments line {i}", {}))
    return [a, b]


def _src(server: FakeLoki, **cfg) -> LokiSource:
    return LokiSource(LokiConfig(url=server.url, **cfg), backoff_s=0.001, max_backoff_s=0.002)


def test_pages_past_the_limit_without_gaps_or_duplicates():
    with FakeLoki(_streams()) as server:
        recs = _src(server, page_limit=5).query_logs("{}", T0 / 1e9 - 1, T0 / 1e9 + 60)
    lines = [r.line for r in recs]
    assert len(lines) == 23 and len(set(lines)) == 23
    assert [r.ts for r in recs] == sorted(r.ts for r in recs)
    assert len(server.requests) > 4  # it really paged
    first = recs[0]
    assert first.service in ("checkout", "payments") and first.pod
    checkout = [r for r in recs if r.service == "checkout"]
    assert checkout[0].level == "ERROR" and checkout[0].trace_id == f"{0:032x}"


def test_end_is_exclusive_and_times_go_out_in_nanoseconds():
    with FakeLoki(_streams()) as server:
        recs = _src(server).query_logs('{service="checkout"}', T0 / 1e9, T0 / 1e9 + 1)
    assert [r.line for r in recs] == ["checkout line 0", "checkout line 1", "checkout line 2"]
    params = server.requests[0]["params"]
    assert params["start"] == str(T0) and params["direction"] == "forward"


def test_tenant_header_is_sent_when_configured():
    with FakeLoki(_streams(), tenant="team-a") as server:
        recs = _src(server, tenant="team-a").query_logs('{service="payments"}', T0 / 1e9, T0 / 1e9 + 60)
        assert len(recs) == 11
        with pytest.raises(QueryError, match="no org id"):
            _src(server).query_logs('{service="payments"}', T0 / 1e9, T0 / 1e9 + 60)


def test_parse_error_is_a_query_error_with_lokis_text():
    with FakeLoki(_streams()) as server, pytest.raises(QueryError) as e:
        _src(server).query_logs('{service="checkout"} |~ oops', T0 / 1e9, T0 / 1e9 + 60)
    assert "parse error at line 1" in str(e.value)
    assert len(server.requests) == 1  # a 400 is not retried


def test_429_and_5xx_are_retried_then_succeed():
    with FakeLoki(_streams()) as server:
        server.faults.extend([(429, "too many outstanding requests"), (503, "service unavailable")])
        recs = _src(server).query_logs('{service="payments"}', T0 / 1e9, T0 / 1e9 + 60)
    assert len(recs) == 11


def test_persistent_5xx_raises_source_unavailable_with_the_body():
    with FakeLoki(_streams()) as server:
        server.faults.extend([(504, "request timed out, decrease the duration of the request")] * 10)
        with pytest.raises(SourceUnavailable, match="request timed out"):
            LokiSource(LokiConfig(url=server.url), retries=2, backoff_s=0.001).query_logs(
                '{service="payments"}', T0 / 1e9, T0 / 1e9 + 60)
        assert len(server.requests) == 3


def test_connection_refused_is_source_unavailable_and_ready_is_down():
    src = LokiSource(LokiConfig(url="http://127.0.0.1:9", timeout_s=0.5), retries=1, backoff_s=0.001)
    with pytest.raises(SourceUnavailable):
        src.query_logs('{service="x"}', 0, 10)
    assert src.ready().status is SourceStatus.DOWN


def test_ready_reports_up_and_down():
    with FakeLoki([]) as server:
        assert _src(server).ready().status is SourceStatus.UP
        server.ready = False
        state = _src(server).ready()
    assert state.status is SourceStatus.DOWN and "503" in state.detail


def test_429_waits_the_retry_after_it_names_before_asking_again():
    with FakeLoki(_streams()) as server:
        server.faults.append((429, "too many outstanding requests", {"Retry-After": "1"}))
        src = LokiSource(LokiConfig(url=server.url), backoff_s=0.001, max_backoff_s=2.0)
        recs = src.query_logs('{service="payments"}', T0 / 1e9, T0 / 1e9 + 60)
    assert len(recs) == 11
    assert server.requests[1]["at"] - server.requests[0]["at"] >= 0.95


def test_a_retry_after_longer_than_the_backoff_is_not_hammered():
    """Loki asks for a minute: the query gives up at once (the source is down for this cycle,
    never an empty result), and the next query inside that minute does not call Loki."""
    with FakeLoki(_streams()) as server:
        server.faults.extend([(429, "ingester throttled", {"Retry-After": "60"})] * 10)
        src = _src(server)
        for _ in range(2):
            with pytest.raises(SourceUnavailable, match=r"429.*ingester throttled.*Retry-After 60"):
                src.query_logs('{service="payments"}', T0 / 1e9, T0 / 1e9 + 60)
        assert len(server.requests) == 1


def test_lokis_detected_level_unknown_is_no_level_so_an_unlevelled_error_line_still_counts() -> None:
    # Loki 3 stamps every line whose level it cannot tell `detected_level="unknown"`
    # (pkg/distributor/field_detection.go). That is no level: the detector must still
    # read the line's own words, as for a line Loki stamped nothing on.
    from detectors.logs import LogDetector, LogReference, LogWindow

    t1 = T0 + 600 * 1_000_000_000
    ok = Stream({"service": "checkout", "detected_level": "info"},
                [(T0 + i * 1_000_000_000, f"INFO order {i} placed", {}) for i in range(600)]
                + [(t1 + i * 1_000_000_000, f"INFO order {i} placed", {}) for i in range(300)])
    bad = Stream({"service": "checkout", "detected_level": "unknown"},
                 [(t1 + (100 + i) * 1_000_000_000, f"upstream connect refused: payments:8080 attempt {i}", {})
                  for i in range(8)])
    with FakeLoki([ok, bad]) as server:
        src = _src(server)
        base = src.query_logs('{service="checkout"}', T0 / 1e9, t1 / 1e9)
        cur = src.query_logs('{service="checkout"}', t1 / 1e9, t1 / 1e9 + 300)
    assert {r.level for r in cur if "refused" in r.line} == {None}
    det = LogDetector()
    found = det.score(det.fit(LogReference(base), T0 / 1e9, t1 / 1e9), LogWindow(cur), t1 / 1e9, t1 / 1e9 + 300)
    assert [f.statistic for f in found if "refused" in f.entity] == ["new_error_template"]


def test_structured_metadata_comes_back_in_the_stream_labels_as_from_loki():
    """Loki answers an entry's structured metadata (a trace_id) inside its stream's labels,
    one stream per label set, and never as a third element unless asked with
    `X-Loki-Response-Encoding-Flags: categorize-labels` (pkg/util/marshal/query.go); the
    client does not ask, and still finds each line's trace."""
    import httpx

    with FakeLoki(_streams()) as server:
        q = {"query": '{service="checkout"}', "start": str(T0), "end": str(T0 + 10**9), "direction": "forward"}
        plain = httpx.get(f"{server.url}/loki/api/v1/query_range", params=q).json()["data"]
        asked = httpx.get(f"{server.url}/loki/api/v1/query_range", params=q,
                          headers={"X-Loki-Response-Encoding-Flags": "categorize-labels"}).json()["data"]
        recs = _src(server).query_logs('{service="checkout"}', T0 / 1e9, T0 / 1e9 + 1)
    assert all(len(v) == 2 for s in plain["result"] for v in s["values"])
    assert sorted(s["stream"]["trace_id"] for s in plain["result"]) == [f"{i:032x}" for i in range(3)]
    assert asked["encodingFlags"] == ["categorize-labels"]
    assert [v[2] for v in asked["result"][0]["values"]][0] == {"structuredMetadata": {"trace_id": f"{0:032x}"}}
    assert [r.trace_id for r in recs] == [f"{i:032x}" for i in range(3)]


def test_a_loki_whose_max_entries_limit_is_below_page_limit_is_paged_at_its_limit(caplog):
    """A Loki with limits_config.max_entries_limit_per_query under sources.loki.page_limit
    answers every page 400 `max entries limit per query exceeded`: that read as a bad query
    and left every model's logs blind each cycle. Its limit is read from the answer, used
    from then on, and said once in the log naming the setting."""
    with FakeLoki(_streams(), max_entries=5) as server:
        src = _src(server, page_limit=10)
        recs = src.query_logs("{}", T0 / 1e9 - 1, T0 / 1e9 + 60)
        again = src.query_logs('{service="payments"}', T0 / 1e9, T0 / 1e9 + 60)
    assert len(recs) == 23 and len({r.line for r in recs}) == 23
    assert len(again) == 11
    assert [r["params"]["limit"] for r in server.requests][:2] == ["10", "5"]
    assert {r["params"]["limit"] for r in server.requests[1:]} == {"5"}  # asked at 10 once, not per page
    assert recs.cut is None
    assert "sources.loki.page_limit" in caplog.text and "max_entries_limit_per_query" in caplog.text


def test_a_loki_that_ignores_start_is_not_asked_ten_thousand_times() -> None:
    # A cache before Loki keyed without the query string: every page is the first page.
    # Each page was taken for "full at one nanosecond" and the cursor moved 1 ns a request:
    # 10,000 requests (31 s on a local fake; minutes against a remote Loki) for 100 lines.
    t0 = 1_800_000_000
    page = json.dumps({"status": "success", "data": {"resultType": "streams", "result": [
        {"stream": {"service": "checkout"}, "values": [[str(t0 * 10**9 + i), f"line {i}"] for i in range(100)]}]}}
    ).encode()
    asked = []

    class SamePage(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args: object) -> None:
            pass

    with LocalHTTPServer(SamePage) as server:
        loki = LokiSource(LokiConfig(url=server.url, page_limit=100), retries=0)
        lines = loki.query_logs('{service="checkout"}', t0, t0 + 60)

    assert len(asked) <= 3
    assert [r.line for r in lines] == [f"line {i}" for i in range(100)]  # what it did read is kept
    assert lines.cut is not None and "before the start asked" in lines.cut
    assert lines.until is not None and t0 <= lines.until < t0 + 60  # judged only up to there
