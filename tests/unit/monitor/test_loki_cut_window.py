"""A Loki read cut short (sources.loki.max_lines): the window's lines end where the read
stopped while its spans go on. Scored as if complete, every line of the cut service
"stopped although its operation still runs" and the busiest service was named the cause."""
from __future__ import annotations

from detectors.records import LogRecord, Span
from monitor.cycle.detect_logs_traces import detect_logs_traces
from monitor.sources.loki import LogLines
from monitor.types import RawSignals, Window

T = 1_800_000_000.0
W = Window(t=T, start=T - 600, baseline_start=T - 1200, baseline_end=T - 600)


def _runs(t0: float, n: int, prefix: str) -> tuple[list[Span], list[LogRecord]]:
    spans, logs = [], []
    for i in range(n):
        t, sid = t0 + i, f"{prefix}{i:015x}"
        spans.append(Span(f"{prefix}t{i:030x}", sid, None, "pricing", "handle", int(t * 1e9), int((t + 0.01) * 1e9)))
        logs.append(LogRecord(t, "pricing", f"INFO loaded route {i}", level="INFO", labels={"span_id": sid}))
        logs.append(LogRecord(t + 0.001, "pricing", f"INFO priced trip {i}", level="INFO", labels={"span_id": sid}))
    return spans, logs


def test_lines_after_the_point_loki_stopped_reading_are_not_judged_missing() -> None:
    base_spans, base_logs = _runs(W.start - 600, 600, "b")
    spans, logs = _runs(W.start, 600, "c")
    cut_at = W.start + 200  # max_lines reached: nothing read after this
    window = LogLines(r for r in logs if r.ts < cut_at)
    window.cut = "read stopped at 400 lines (sources.loki.max_lines 400); the 400 s after ... unread"
    window.until = cut_at
    raw = RawSignals(logs_current=window, logs_baseline=base_logs, spans_current=spans, spans_baseline=base_spans,
                     baseline_window=(W.start - 600, W.start))
    result = detect_logs_traces(raw, "m", W, {})
    assert [f.entity for f in result.findings if f.statistic == "vanished_template"] == []
    assert result.evidence is not None
    assert any("logs read only up to" in line for line in result.evidence.lacking)


def test_the_window_is_whole_only_up_to_the_earliest_cut_among_the_services() -> None:
    from monitor.cycle.logs_traces import pull_logs

    class _Loki:
        def query_logs(self, query: str, start: float, end: float) -> LogLines:
            lines = LogLines([LogRecord(start + 1, "x", "INFO ok")])
            if "busy" in query or "chatty" in query:
                lines.cut, lines.until = "read stopped", start + (100 if "busy" in query else 300)
            return lines

    out = pull_logs(_Loki(), ["busy", "calm", "chatty"], W.start, W.t)
    assert out.until == W.start + 100 and out.cut is not None and "busy" in out.cut
    assert pull_logs(_Loki(), ["calm"], W.start, W.t).until is None
