"""A KPI or SLO is one series. A query that returns several (per pod, say: not
aggregated) was read as its first series alone: the other pods' values were never
judged, and after a rolling restart the first could be the old pod's, stopped minutes
ago, while the freshest one passed the "stopped" check for it: stale points read as
healthy. It is a gap that says to aggregate the query."""
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


class PerPodPrometheus:
    """CTR per pod: the old pod's series stopped 20 min ago at a healthy 0.05, the new
    pod's runs to now at 0.01 (a drop). p99 is one healthy series."""

    def query_range(self, query: str, start: float, end: float, step: float | None = None, *,
                    name: str | None = None) -> list[Series]:
        ts = np.arange(np.ceil(start / 60) * 60, end + 1e-9, 60.0)
        if query == P99_QUERY:
            return [Series(name or query, {}, ts, np.full(len(ts), 0.1))]
        if query != CTR_QUERY:
            return []
        old = ts[ts < T0 - 1200]
        return [Series(name or query, {"pod": "recsys-a"}, old, np.full(len(old), 0.05)),
                Series(name or query, {"pod": "recsys-b"}, ts, np.full(len(ts), 0.01))]


def test_a_kpi_query_returning_several_series_is_a_gap_not_its_first_series(tmp_path: Any) -> None:
    cfg = make_config(tmp_path)
    store = Store(cfg.store.url)
    health = SourceHealth.for_sources({"prometheus": "http://127.0.0.1:9"}, VigilMetrics(), lambda: T0)
    samples = SampleReader(cfg, store)
    refs = ReferenceChooser(cfg, store, serving_registry(), samples, lambda: T0)
    src = Sources(PerPodPrometheus(), health, samples, refs, LogTraceSources(), 60.0)
    raw = gather(src, GatherRequest(cfg.model(MODEL), W, "1", None))
    assert [s.name for s in raw.kpis] == []
    gaps = {f.entity: f for f in raw.gaps.findings if f.kind is FindingKind.NO_DATA}
    assert "ctr" in gaps, raw.gaps.findings
    assert "2 series" in gaps["ctr"].message and "aggregate" in gaps["ctr"].message
    assert [s.name for s in raw.slos] == ["p99_latency"]
