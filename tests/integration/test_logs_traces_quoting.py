"""Service names reach LogQL and TraceQL as quoted strings: a name with a quote or a
backslash (from the config, or from a span of a service calling the model's) must
select that service, not break the query (every cycle blind) nor widen it."""
from __future__ import annotations

try:
    from tests.fakes.loki_server import FakeLoki, Stream
    from tests.fakes.tempo_server import FakeSpan, FakeTempo
except ImportError:  # pytest put tests/ on sys.path, not the repo root
    from fakes.loki_server import FakeLoki, Stream
    from fakes.tempo_server import FakeSpan, FakeTempo
from monitor.config import LokiConfig, TempoConfig
from monitor.cycle.logs_traces import pull_logs, pull_spans
from monitor.sources.loki import LokiSource
from monitor.sources.tempo import TempoSource

T0 = 1_795_259_340_000_000_000
ODD = ['pay"ments', "C:\\svc\\new"]


def test_service_names_with_quotes_and_backslashes_select_their_logs():
    streams = [Stream({"service": name}, [(T0 + i, f"{name} line", {})]) for i, name in enumerate(ODD)]
    streams.append(Stream({"service": "other"}, [(T0, "other line", {})]))
    with FakeLoki(streams) as server:
        loki = LokiSource(LokiConfig(url=server.url), backoff_s=0.001, max_backoff_s=0.002)
        recs = pull_logs(loki, ODD, T0 / 1e9 - 1, T0 / 1e9 + 1)
    assert sorted(r.service for r in recs) == sorted(ODD)


def test_service_names_with_quotes_and_backslashes_select_their_traces():
    spans = [FakeSpan(f"{i + 1:032x}", f"{i + 1:016x}", None, name, "op", T0, T0 + 1_000_000)
             for i, name in enumerate([*ODD, "other"])]
    with FakeTempo(spans) as server:
        tempo = TempoSource(TempoConfig(url=server.url), backoff_s=0.001, max_backoff_s=0.002)
        got = pull_spans(tempo, ODD, T0 / 1e9 - 1, T0 / 1e9 + 1, limit=10)
    assert sorted(s.service for s in got) == sorted(ODD)
