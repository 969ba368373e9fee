"""Loki logs and Tempo traces of a model's services, for the window and the baseline
before it. A source that fails is marked down and reported as blind; the other one
still counts."""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from detectors.records import Span
from monitor.config import ModelConfig
from monitor.config_sources import SourcesConfig
from monitor.cycle.health import SourceHealth
from monitor.sources.errors import QueryError, SourceUnavailable
from monitor.sources.loki import LogLines
from monitor.types import RawSignals, Window

log = logging.getLogger("vigil.gather")
R = TypeVar("R")
REFRESH_FAILED = "its refresh failed"
HOLD_LOGS = "not refitted while the traces baseline it pairs with is unread"


@dataclass(frozen=True)
class LogTraceSources:
    loki: Any = None
    tempo: Any = None
    search_limit: int = 50  # traces per TraceQL search
    log_label: str = "service"  # the Loki stream label naming a service (sources.loki.service_label)

    @classmethod
    def wired(cls, loki: Any, tempo: Any, sources: SourcesConfig) -> LogTraceSources:
        """The clients with their settings from `sources:`."""
        return cls(loki, tempo, sources.tempo.search_limit if sources.tempo else 50,
                   sources.loki.service_label if sources.loki else "service")

    @property
    def configured(self) -> bool:
        return self.loki is not None or self.tempo is not None


def quoted(value: str) -> str:
    """`value` as a double-quoted LogQL/TraceQL string (both lexers read Go's escapes).
    Service names come from the config and from spans of services calling the model's:
    a quote or backslash in one must select that service, not break the query (the
    source blind every cycle) nor change what it selects."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + escaped.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t") + '"'


def pull_logs(loki: Any, services: list[str], start: float, end: float, label: str = "service"
              ) -> LogLines:
    """Each service's lines; `cut` names the services whose read Loki cut short, and why."""
    out, cuts = LogLines(), []
    for svc in services:
        lines = loki.query_logs(f"{{{label}={quoted(svc)}}}", start, end)
        out.extend(lines)
        if getattr(lines, "cut", None):
            cuts.append(f"{svc}: {lines.cut}")
        until = getattr(lines, "until", None)
        if until is not None:
            # The window is whole only up to where the earliest cut read stopped.
            out.until = until if out.until is None else min(out.until, until)
    out.cut = "; ".join(cuts) or None
    return out


class SpanList(list[Span]):
    """Spans of the traces searched; `sampled`: each service whose search Tempo cut at its
    limit, and why (more traces matched than were read)."""

    sampled: tuple[str, ...] = ()


def pull_spans(tempo: Any, services: list[str], start: float, end: float, limit: int) -> SpanList:
    """Traces touching the services: a TraceQL search per service, then each trace once."""
    seen: set[str] = set()
    spans, sampled = SpanList(), []
    for svc in services:
        hits = tempo.search(f"{{ resource.service.name = {quoted(svc)} }}", start, end, limit=limit)
        if cut := getattr(hits, "cut", None):
            sampled.append(f"{svc}: {cut}")
        for summary in hits:
            if summary.trace_id in seen:
                continue
            seen.add(summary.trace_id)
            spans.extend(tempo.trace(summary.trace_id, start, end) or [])
    spans.sampled = tuple(sampled)
    return spans


def pull_logs_traces(src: LogTraceSources, health: SourceHealth, m: ModelConfig, w: Window, raw: RawSignals,
                     with_baseline: bool, can_fall_back: Callable[[str], bool] = lambda source: False) -> None:
    """Traces first: services they show calling the model's services are read for logs too.
    The window before (`with_baseline`) is read only when the stored baselines are refitted;
    `can_fall_back(source)`: whether its stored baseline may stand in for a failed refresh
    (asked only then)."""
    if not m.services or not src.configured:
        return
    base = (w.start - (w.t - w.start), w.start)
    raw.baseline_window = base if with_baseline else None
    read = _Read(health, raw, w, base, with_baseline, can_fall_back)
    if src.tempo is not None:
        services = sorted(set(m.services))
        spans = read("tempo", "traces", lambda a, b: pull_spans(src.tempo, services, a, b, src.search_limit))
        if spans is not None:
            raw.spans_current, raw.spans_baseline = spans
            if sampled := getattr(spans[0], "sampled", ()):  # the window's: its spans are what is judged
                raw.traces_sampled = (f"traces a sample, more matched than were read (sources.tempo.search_limit "
                                      f"{src.search_limit}): {'; '.join(sampled)}")
    if src.loki is not None:
        services = sorted(set(m.services) | {s.service for s in raw.spans_current})
        # Lines are counted per run of the spans they belong to: a log baseline fitted
        # without them would not match a window scored with them, and it would be stored,
        # and kept as it is through an incident opened next cycle.
        hold = HOLD_LOGS if "traces" in raw.baseline_unread and raw.spans_current else None
        logs = read("loki", "logs", lambda a, b: pull_logs(src.loki, services, a, b, src.log_label), hold)
        if logs is not None:
            raw.logs_current, raw.logs_baseline = logs


@dataclass(frozen=True)
class _Read:
    """One source's window and baseline, kept both or neither: a window scored against a
    baseline whose read failed would make every line or call look new, and that empty
    baseline would be stored for the cycles after. Only a stored baseline may stand in
    for a failed refresh: the window is then scored against it, it is kept as it is, and
    the source's health and the diagnosis say so. With `hold` (why) a stored baseline
    stands in without the refresh being read at all."""

    health: SourceHealth
    raw: RawSignals
    w: Window
    base: tuple[float, float]
    with_baseline: bool
    can_fall_back: Callable[[str], bool]

    def __call__(self, source: str, modality: str, read: Callable[[float, float], list[R]], hold: str | None = None
                 ) -> tuple[list[R], list[R]] | None:
        try:
            current = read(self.w.start, self.w.t)
        except (SourceUnavailable, QueryError) as e:
            self._blind(source, e)
            return None
        if not self.with_baseline:
            self.health.mark(source, True, self._cut(source, "window", current))
            return current, []
        if hold is not None and self.can_fall_back(source):
            self.raw.baseline_unread[modality] = hold
            self.health.mark(source, True, self._cut(source, "window", current))
            return current, []
        try:
            baseline = read(*self.base)
        except (SourceUnavailable, QueryError) as e:
            if not self.can_fall_back(source):
                self._blind(source, e)
                return None
            self.raw.baseline_unread[modality] = REFRESH_FAILED
            log.warning("baseline refresh failed; scoring against the stored baseline",
                        extra={"source": source, "error": str(e)})
            cut = self._cut(source, "window", current)
            self.health.mark(source, True, f"baseline refresh failed, scoring against the stored baseline: {e}"
                             + (f"; {cut}" if cut else ""))
            self.health.metrics.baseline_refresh_failures.labels(source).inc()
            return current, []
        cuts = [c for c in (self._cut(source, "window", current), self._cut(source, "baseline", baseline)) if c]
        self.health.mark(source, True, "; ".join(cuts))
        return current, baseline

    def _cut(self, source: str, which: str, records: list[Any]) -> str:
        """A read the source cut short (Loki's line cap): what was read is scored, but
        the cycle is blind to the rest and says so rather than judge it complete."""
        cut = getattr(records, "cut", None)
        if not cut:
            return ""
        line = f"{which} partly unread: {cut}"
        self.raw.gaps.blind.append(f"{source}: {line}")
        return line

    def _blind(self, source: str, e: Exception) -> None:
        self.health.mark(source, False, str(e))
        self.raw.gaps.blind.append(f"{source}: {e}")
