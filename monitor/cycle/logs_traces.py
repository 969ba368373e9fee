"""Loki logs and Tempo traces of a model's services, for the window and the baseline
before it. A source that fails is marked down and reported as blind; the other one
still counts."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from detectors.records import LogRecord, Span
from monitor.config import ModelConfig
from monitor.cycle.health import SourceHealth
from monitor.sources.errors import QueryError, SourceUnavailable
from monitor.types import RawSignals, Window


@dataclass(frozen=True)
class LogTraceSources:
    loki: Any = None
    tempo: Any = None
    search_limit: int = 50  # traces per TraceQL search

    @property
    def configured(self) -> bool:
        return self.loki is not None or self.tempo is not None


def pull_logs(loki: Any, services: list[str], start: float, end: float) -> list[LogRecord]:
    out: list[LogRecord] = []
    for svc in services:
        out.extend(loki.query_logs(f'{{service="{svc}"}}', start, end))
    return out


def pull_spans(tempo: Any, services: list[str], start: float, end: float, limit: int) -> list[Span]:
    """Traces touching the services: a TraceQL search per service, then each trace once."""
    seen: set[str] = set()
    spans: list[Span] = []
    for svc in services:
        for summary in tempo.search(f'{{ resource.service.name = "{svc}" }}', start, end, limit=limit):
            if summary.trace_id in seen:
                continue
            seen.add(summary.trace_id)
            spans.extend(tempo.trace(summary.trace_id, start, end) or [])
    return spans


def pull_logs_traces(src: LogTraceSources, health: SourceHealth, m: ModelConfig, w: Window, raw: RawSignals,
                     with_baseline: bool) -> None:
    """Traces first: services they show calling the model's services are read for logs too.
    The window before (`with_baseline`) is read only when the stored baselines are refitted."""
    if not m.services or not src.configured:
        return
    base = (w.start - (w.t - w.start), w.start)
    raw.baseline_window = base if with_baseline else None
    # A source's window and baseline are kept both or neither: a window scored against a
    # baseline whose read failed would make every line or call look new, and that empty
    # baseline would be stored for the cycles after.
    if src.tempo is not None:
        try:
            services = sorted(set(m.services))
            spans = pull_spans(src.tempo, services, w.start, w.t, src.search_limit)
            spans_base = pull_spans(src.tempo, services, *base, src.search_limit) if with_baseline else []
            raw.spans_current, raw.spans_baseline = spans, spans_base
            health.mark("tempo", True)
        except (SourceUnavailable, QueryError) as e:
            health.mark("tempo", False, str(e))
            raw.gaps.blind.append(f"tempo: {e}")
    if src.loki is not None:
        try:
            services = sorted(set(m.services) | {s.service for s in raw.spans_current})
            logs = pull_logs(src.loki, services, w.start, w.t)
            raw.logs_baseline = pull_logs(src.loki, services, *base) if with_baseline else []
            raw.logs_current = logs
            health.mark("loki", True)
        except (SourceUnavailable, QueryError) as e:
            health.mark("loki", False, str(e))
            raw.gaps.blind.append(f"loki: {e}")
