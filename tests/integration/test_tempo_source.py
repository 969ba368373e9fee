"""TempoSource against a local server that follows the Tempo contract."""
from __future__ import annotations

import json

import pytest

try:
    from tests.fakes.tempo_server import FakeSpan, FakeTempo
except ImportError:  # pytest put tests/ on sys.path, not the repo root
    from fakes.tempo_server import FakeSpan, FakeTempo
from monitor.config import TempoConfig
from monitor.sources.errors import QueryError, SourceStatus, SourceUnavailable
from monitor.sources.tempo import TempoSource, spans_from_otlp

T0 = 1_795_259_340_000_000_000
TID = "3149195ffb0bec05347b48efe8ecc1b0"


def _spans() -> list[FakeSpan]:
    return [
        FakeSpan(TID, "4b23de25d1fb6641", None, "gateway", "POST /predict", T0, T0 + 320_000_000),
        FakeSpan(TID, "3ef58fd67f3c3c44", "4b23de25d1fb6641", "inference", "preprocess", T0 + 1_000_000,
                 T0 + 301_000_000, error=True, attributes={"http.status_code": 500}),
        FakeSpan("00000000000000000000000000000abc", "0000000000000001", None, "other", "GET /", T0, T0 + 500_000),
    ]


def _src(server: FakeTempo, **cfg) -> TempoSource:
    return TempoSource(TempoConfig(url=server.url, **cfg), backoff_s=0.001, max_backoff_s=0.002)


def test_trace_by_id_decodes_base64_ids_to_hex_and_keeps_the_tree():
    with FakeTempo(_spans()) as server:
        spans = _src(server).trace(TID, T0 / 1e9 - 10, T0 / 1e9 + 10)
    assert spans is not None and len(spans) == 2
    by_op = {s.operation: s for s in spans}
    pre = by_op["preprocess"]
    assert pre.trace_id == TID and pre.span_id == "3ef58fd67f3c3c44"
    assert pre.parent_id == by_op["POST /predict"].span_id and by_op["POST /predict"].parent_id is None
    assert pre.service == "inference" and pre.error and pre.attributes["http.status_code"] == 500
    assert pre.duration_ns == 300_000_000


def test_unknown_trace_is_none_not_an_error():
    with FakeTempo(_spans()) as server:
        assert _src(server).trace("ffffffffffffffffffffffffffffffff") is None


def test_search_returns_hex_ids_and_omitted_zero_fields():
    with FakeTempo(_spans()) as server:
        found = _src(server).search('{ resource.service.name = "inference" }', T0 / 1e9 - 60, T0 / 1e9 + 60)
        everything = _src(server, search_limit=1).search("{}", T0 / 1e9 - 60, T0 / 1e9 + 60)
    assert [t.trace_id for t in found] == [TID]
    assert found[0].root_service == "gateway" and found[0].duration_ms == 320
    assert found[0].matched_span_ids == ["3ef58fd67f3c3c44"]
    assert len(everything) == 1  # search_limit is sent as `limit`
    assert server.requests[-1]["params"]["limit"] == "1"


def test_short_trace_has_zero_duration_when_tempo_omits_it():
    with FakeTempo(_spans()) as server:
        found = _src(server).search('{ resource.service.name = "other" }', T0 / 1e9 - 60, T0 / 1e9 + 60)
    assert found[0].duration_ms == 0.0


def test_invalid_traceql_is_a_query_error_with_the_text():
    with FakeTempo(_spans()) as server:
        with pytest.raises(QueryError, match="invalid TraceQL query"):
            _src(server).search("{ resource.service.name = ", T0 / 1e9 - 60, T0 / 1e9 + 60)
        assert len(server.requests) == 1


def test_5xx_retried_then_source_unavailable():
    with FakeTempo(_spans()) as server:
        server.faults.append((503, "upstream unavailable"))
        assert _src(server).trace(TID) is not None  # one retry is enough
        server.faults.extend([(500, "internal error")] * 10)
        with pytest.raises(SourceUnavailable, match="internal error"):
            TempoSource(TempoConfig(url=server.url), retries=1, backoff_s=0.001).trace(TID)


def test_ready():
    with FakeTempo([]) as server:
        assert _src(server).ready().status is SourceStatus.UP
        server.ready = False
        assert _src(server).ready().status is SourceStatus.DOWN


def test_resource_spans_key_is_accepted_too():
    body = {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "a"}}]},
                               "scopeSpans": [{"spans": [{"traceId": "MUkZX/sL7AU0e0jv6OzBsA==",
                                                          "spanId": "SyPeJdH7ZkE=",
                                                          "name": "x", "startTimeUnixNano": "1", "endTimeUnixNano": "5",
                                                          "status": {"code": "STATUS_CODE_ERROR"}}]}]}]}
    (s,) = spans_from_otlp(body)
    assert s.trace_id == TID and s.error and s.parent_id is None


def test_hex_ids_of_otlp_json_stay_the_ids_they_are():
    """OTLP/JSON proper (a collector or a proxy re-encoding Tempo's answer) writes ids as hex.
    Every hex id of 16 or 32 digits is also valid base64, so it was decoded as base64 into
    another id, and the spans no longer matched their logs' span_id or their search hit."""
    body = {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "a"}}]},
                               "scopeSpans": [{"spans": [{"traceId": TID, "spanId": "3ef58fd67f3c3c44",
                                                          "parentSpanId": "4b23de25d1fb6641",
                                                          "name": "x", "startTimeUnixNano": "1",
                                                          "endTimeUnixNano": "5"}]}]}]}
    (s,) = spans_from_otlp(body)
    assert (s.trace_id, s.span_id, s.parent_id) == (TID, "3ef58fd67f3c3c44", "4b23de25d1fb6641")


def test_a_search_id_tempo_wrote_without_its_leading_zeros_is_the_spans_id():
    """Tempo's search writes a trace ID without its leading zeros ("abc" for 000...0abc,
    one trace in sixteen starts with a zero); trace-by-id writes all 32 digits. The summary
    carries the spans' form, so search results, spans and logs share one id form."""
    short = "00000000000000000000000000000abc"
    with FakeTempo(_spans()) as server:
        src = _src(server)
        found = src.search('{ resource.service.name = "other" }', T0 / 1e9 - 60, T0 / 1e9 + 60)
        assert server.requests[-1]["path"] == "/api/search"
        spans = src.trace(found[0].trace_id, T0 / 1e9 - 10, T0 / 1e9 + 10)
    assert [t.trace_id for t in found] == [short]
    assert spans is not None and [s.trace_id for s in spans] == [short]


def test_a_multi_tenant_tempo_is_read_with_the_configured_tenant():
    """Tempo with multitenancy_enabled needs X-Scope-OrgID on every request (401 `no org id`
    without it), as Loki does: `sources.tempo.tenant` sends it, so a multi-tenant Tempo is
    not blind every cycle."""
    with FakeTempo(_spans(), tenant="team-a") as server:
        src = _src(server, tenant="team-a")
        found = src.search('{ resource.service.name = "inference" }', T0 / 1e9 - 60, T0 / 1e9 + 60)
        spans = src.trace(TID, T0 / 1e9 - 10, T0 / 1e9 + 10)
        assert all(r["headers"].get("X-Scope-OrgID") == "team-a" for r in server.requests)
        with pytest.raises(SourceUnavailable, match="no org id"):
            _src(server).search("{}", T0 / 1e9 - 60, T0 / 1e9 + 60)
        assert _src(server, tenant="team-b").search("{}", T0 / 1e9 - 60, T0 / 1e9 + 60) == []
    assert [t.trace_id for t in found] == [TID] and spans is not None and len(spans) == 2


@pytest.mark.parametrize(("limit", "cut"), [(2, "the search limit of 2 traces was reached"), (3, None)])
def test_a_search_cut_at_its_limit_says_so(limit, cut):
    """Tempo stops at `limit` traces and never says how many matched: as many as the limit
    came back means the answer may be a sample (two traces here: a limit of 3 holds them all)."""
    with FakeTempo(_spans()) as server:
        hits = _src(server, search_limit=limit).search("{}", T0 / 1e9 - 60, T0 / 1e9 + 60)
    assert hits.cut == cut


def test_a_search_tempo_stopped_before_its_last_job_says_so():
    class Stopped(FakeTempo):
        def _search(self, q):
            status, body, ctype = super()._search(q)
            answer = json.loads(body)
            answer["metrics"].update(completedJobs=3, totalJobs=13)
            return status, json.dumps(answer), ctype

    with Stopped(_spans()) as server:
        hits = _src(server, search_limit=20).search("{}", T0 / 1e9 - 60, T0 / 1e9 + 60)
    assert len(hits) == 2 and hits.cut == "Tempo stopped after 3 of 13 search jobs"
