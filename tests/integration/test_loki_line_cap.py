"""A chatty service: Loki's reads are bounded per query, and what the bound (or a run of
lines at one nanosecond longer than a page) leaves unread is said, never judged complete."""
from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

try:
    from tests.fakes.loki_server import FakeLoki, Stream
except ImportError:  # pytest put tests/ on sys.path, not the repo root
    from fakes.loki_server import FakeLoki, Stream
from detectors.records import LogRecord
from monitor.config import LokiConfig
from monitor.cycle.health import SourceHealth
from monitor.cycle.logs_traces import LogTraceSources, pull_logs_traces
from monitor.metrics import VigilMetrics
from monitor.sources.loki import LogLines, LokiSource
from monitor.types import RawSignals, Window

T0 = 1_795_259_340_000_000_000  # ns


def _chatty(n: int, step_ns: int = 1_000_000) -> list[Stream]:
    s = Stream({"service": "checkout"})
    s.entries.extend((T0 + i * step_ns, f"line {i}", {}) for i in range(n))
    return [s]


def _src(server: FakeLoki, **cfg: Any) -> LokiSource:
    return LokiSource(LokiConfig(url=server.url, **cfg), backoff_s=0.001, max_backoff_s=0.002)


def test_lines_read_per_query_are_capped_and_the_cut_is_said() -> None:
    with FakeLoki(_chatty(100)) as server:
        recs = _src(server, page_limit=10, max_lines=25).query_logs("{}", T0 / 1e9, T0 / 1e9 + 60)
        assert len(server.requests) <= 3  # not the 10 pages the whole range takes
    assert 25 <= len(recs) <= 30
    assert recs.cut is not None and "max_lines" in recs.cut


def test_a_range_read_whole_has_no_cut() -> None:
    with FakeLoki(_chatty(20)) as server:
        recs = _src(server, page_limit=10, max_lines=25).query_logs("{}", T0 / 1e9, T0 / 1e9 + 60)
    assert len(recs) == 20 and recs.cut is None


def test_more_lines_at_one_nanosecond_than_a_page_is_a_cut_not_a_log_line() -> None:
    with FakeLoki(_chatty(8, step_ns=0)) as server:
        recs = _src(server, page_limit=5).query_logs("{}", T0 / 1e9, T0 / 1e9 + 60)
    assert len(recs) == 5
    assert recs.cut is not None and "nanosecond" in recs.cut


def test_max_lines_is_validated_with_its_name() -> None:
    with pytest.raises(ValidationError, match="max_lines"):
        LokiConfig(url="http://127.0.0.1:3100", max_lines=0)


class _CutLoki:
    def query_logs(self, query: str, start: float, end: float) -> LogLines:
        out = LogLines([LogRecord(start + 1, "api", "INFO served", level="INFO")])
        out.cut = "read stopped at 1 lines (sources.loki.max_lines)"
        return out


def test_a_cut_window_makes_the_cycle_blind_to_logs_not_all_clear() -> None:
    t = T0 / 1e9
    w = Window(t=t, start=t - 1800, baseline_start=t - 5400, baseline_end=t - 1800)
    health = SourceHealth.for_sources({"loki": "http://l"}, VigilMetrics(), lambda: t)
    raw = RawSignals()
    model = type("M", (), {"services": ["api"]})()
    pull_logs_traces(LogTraceSources(loki=_CutLoki()), health, model, w, raw, with_baseline=False)
    assert raw.logs_current  # what was read still counts
    assert any(line.startswith("loki:") and "max_lines" in line for line in raw.gaps.blind)
    assert "max_lines" in health.states["loki"].detail


def test_a_read_stopped_by_the_line_cap_says_until_when_the_lines_are_whole() -> None:
    with FakeLoki(_chatty(100, step_ns=100_000_000)) as server:  # 10 lines a second for 10 s
        src = _src(server, page_limit=10, max_lines=25)
        recs = src.query_logs("{}", T0 / 1e9, T0 / 1e9 + 60)
    assert recs.until is not None and T0 / 1e9 < recs.until < T0 / 1e9 + 10
    assert all(r.ts <= recs.until for r in recs)
    with FakeLoki(_chatty(20)) as server:
        assert _src(server, page_limit=10, max_lines=25).query_logs("{}", T0 / 1e9, T0 / 1e9 + 60).until is None
