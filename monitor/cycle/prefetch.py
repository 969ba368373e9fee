"""Before a sweep's cycles: what many models read alike, read once for all of them.

A sweep at time t asks Prometheus the same few windows for every model (the KPI and
root-cause metric window from the baseline start, the SLO and GPU window from the window start, a day of history
for series the anomaly detector has not seen yet) and the registry for every alias.
`prefetch` sends those as a handful of batched requests (`query_range_many`) and one
registry read, and `Prefetched` answers the cycles from them. It is only a cache: a
query the prefetch did not plan (an incident moved the baseline, a new series appeared)
goes to Prometheus as before, and every error a query would have raised alone is raised
to the cycle that asks, so the cycle's gap and health handling are unchanged.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from detectors.records import Answer, Series, partial_of
from monitor.config import ModelConfig, VigilConfig
from monitor.config_root_cause import RootCauseConfig
from monitor.cycle.gather import ANOMALY_WARMUP_S, gpu_queries
from monitor.sources.errors import QueryError, SourceUnavailable, source_down
from monitor.types import Window

log = logging.getLogger("vigil.prefetch")

RangeKey = tuple[str, float, float]  # (query, start, end) at the source's configured step
Result = list[Series] | QueryError | SourceUnavailable


@dataclass
class Prefetched:
    """A sweep's batched reads; `ranges` by (query, start, end), `aliases` by registered
    model name (None: the registry was not read, each cycle polls it itself)."""

    t: float
    ranges: dict[RangeKey, Result] = field(default_factory=dict)
    aliases: dict[str, dict[str, str]] | None = None
    registry_error: Exception | None = None
    requests: int = 0

    def prometheus(self, source: Any) -> PrefetchedPrometheus:
        return PrefetchedPrometheus(self, source)


class PrefetchedPrometheus:
    """`query_range` from the prefetched results, else from the source itself."""

    def __init__(self, prefetched: Prefetched, source: Any) -> None:
        self._p, self._source = prefetched, source

    def query_range(self, query: str, start: float, end: float, step: float | None = None, *,
                    name: str | None = None) -> list[Series]:
        hit = self._p.ranges.get((query, start, end)) if step is None else None
        if hit is None:
            found = self._source.query_range(query, start, end, step, name=name)
            return Answer.of(found, partial_of(found))
        if isinstance(hit, Exception):
            raise hit
        # a copy (the cycle may change it), still saying whether the answer was partial
        return Answer.of(hit if name is None else [replace(s, name=name) for s in hit], partial_of(hit))

    def __getattr__(self, attr: str) -> Any:  # query, ready, close: the source's own
        return getattr(self._source, attr)


@dataclass(frozen=True)
class ModelPlan:
    """What one model's gather will ask at t (its window as the cycle will compute it)."""

    model: ModelConfig
    window: Window
    warmup: bool  # first sight of the model: a day of history for every KPI/SLO series
    root_cause: RootCauseConfig | None = None  # its root-cause metrics (read from the baseline start)
    anomalies: bool = True  # the anomaly detector runs: the KPIs' and SLOs' volumes are read


def planned_ranges(plans: Sequence[ModelPlan], t: float) -> dict[tuple[float, float], list[str]]:
    """The distinct queries per window: the batches to send."""
    by_window: dict[tuple[float, float], dict[str, None]] = {}

    def add(q: str, start: float) -> None:
        by_window.setdefault((start, t), {})[q] = None

    for p in plans:
        m, w = p.model, p.window
        for k in m.kpis:
            add(k.query, w.baseline_start)
            if k.volume_query and p.anomalies:
                add(k.volume_query, w.baseline_start)
        for rc in p.root_cause.metrics if p.root_cause else ():
            add(rc.query, w.baseline_start)
        for slo in m.slos:
            add(slo.query, w.start)
            if slo.volume_query and p.anomalies:
                add(slo.volume_query, w.start)
        if m.gpu is not None:
            for q in gpu_queries(m.gpu.selector).values():
                add(q, w.start)
        if p.warmup:
            for q in [k.query for k in m.kpis] + [s.query for s in m.slos]:
                add(q, t - ANOMALY_WARMUP_S)
            volumes = [k.volume_query for k in m.kpis] + [s.volume_query for s in m.slos]
            for q in filter(None, volumes):
                add(q, t - ANOMALY_WARMUP_S)
    return {k: list(v) for k, v in by_window.items()}


def prefetch(config: VigilConfig, plans: Sequence[ModelPlan], t: float, prometheus: Any,
             registry: Any | None) -> Prefetched:
    out = Prefetched(t)
    if hasattr(prometheus, "query_range_many"):
        down: SourceUnavailable | None = None  # a window found Prometheus unreachable: not asked again
        for (start, end), queries in planned_ranges(plans, t).items():
            results: list[Result] = [down] * len(queries) if down else prometheus.query_range_many(queries, start, end)
            down = down or source_down(results)
            out.ranges.update({(q, start, end): r for q, r in zip(queries, results, strict=True)})
    if registry is not None and hasattr(registry, "all_aliases"):
        names = sorted({p.model.registry for p in plans})
        try:
            out.aliases = registry.all_aliases(names)
        except Exception as e:  # each cycle polls on its own and reports the registry's state
            log.warning("registry sweep read failed", extra={"error": str(e)})
            out.registry_error = e
    return out
