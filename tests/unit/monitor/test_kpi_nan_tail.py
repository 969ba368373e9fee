"""A ratio KPI or SLO whose traffic stopped: Prometheus keeps answering on the step grid,
with NaN (0/0) instead of values. The points are there, so the stopped-series check
passed, and the KPI detector skips NaN: a model that serves nothing had no KPI finding
and no gap at all, a silent all clear. A series with no value lately is stopped."""
from __future__ import annotations

from typing import Any

import numpy as np

from detectors.records import FindingKind, Series
from monitor.cycle.gather import GatherRequest, Sources, gather
from monitor.cycle.health import SourceHealth
from monitor.cycle.logs_traces import LogTraceSources
from monitor.cycle.reference import ReferenceChooser
from monitor.cycle.samples import SampleReader
from monitor.metrics import VigilMetrics
from monitor.store.repository import Store
from monitor.types import Window
from tests.helpers_vigil import CTR_QUERY, MODEL, P99_QUERY, T0, make_config, serving_registry

W = Window(t=T0, start=T0 - 1800, baseline_start=T0 - 5400, baseline_end=T0 - 1800)


class TrafficStopped:
    """CTR 0.05 until 20 minutes ago, then 0/0; p99 healthy throughout."""

    def query_range(self, query: str, start: float, end: float, step: float | None = None, *,
                    name: str | None = None) -> list[Series]:
        ts = np.arange(np.ceil(start / 60) * 60, end + 1e-9, 60.0)
        if query == P99_QUERY:
            return [Series(name or query, {}, ts, np.full(len(ts), 0.1))]
        if query != CTR_QUERY:
            return []
        return [Series(name or query, {}, ts, np.where(ts < T0 - 1200, 0.05, np.nan))]


def test_a_kpi_that_is_nan_lately_is_a_gap_not_an_all_clear(tmp_path: Any) -> None:
    cfg = make_config(tmp_path)
    store = Store(cfg.store.url)
    health = SourceHealth.for_sources({"prometheus": "http://127.0.0.1:9"}, VigilMetrics(), lambda: T0)
    samples = SampleReader(cfg, store)
    refs = ReferenceChooser(cfg, store, serving_registry(), samples, lambda: T0)
    src = Sources(TrafficStopped(), health, samples, refs, LogTraceSources(), 60.0)
    raw = gather(src, GatherRequest(cfg.model(MODEL), W, "1", None))
    gaps = {f.entity: f for f in raw.gaps.findings if f.kind is FindingKind.NO_DATA}
    assert "ctr" in gaps and "21 min" in gaps["ctr"].message, raw.gaps.findings
    assert [s.name for s in raw.kpis] == [] and [s.name for s in raw.slos] == ["p99_latency"]
