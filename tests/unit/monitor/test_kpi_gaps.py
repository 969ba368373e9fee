"""A KPI or SLO series that cannot be read as one healthy series is a gap, never a silent
all clear:

- several series (per pod, say: not aggregated) were read as the first alone: the other
  pods were never judged, and after a rolling restart the first could be the old pod's,
  stopped minutes ago, while the freshest passed the "stopped" check for it. The gap says
  to aggregate the query.
- a ratio whose traffic stopped: Prometheus keeps answering on the step grid with NaN
  (0/0). The points were there, so the stopped-series check passed, and the KPI detector
  skips NaN: a model serving nothing had no finding at all. (Then every idle night was a
  no-data page: now a window with real points is judged on them, and one that is 0/0
  throughout is a blind line, no finding: tests/unit/monitor/test_kpi_no_traffic.py.)
"""
from __future__ import annotations

from typing import Any

import numpy as np

from detectors.records import Finding, FindingKind, Series
from monitor.cycle.gather import GatherRequest, RawSignals, Sources, gather
from monitor.cycle.health import SourceHealth
from monitor.cycle.logs_traces import LogTraceSources
from monitor.cycle.reference import ReferenceChooser
from monitor.cycle.samples import SampleReader
from monitor.metrics import VigilMetrics
from monitor.store.repository import Store
from monitor.types import Window
from tests.helpers_vigil import CTR_QUERY, MODEL, P99_QUERY, T0, make_config, serving_registry

W = Window(t=T0, start=T0 - 1800, baseline_start=T0 - 5400, baseline_end=T0 - 1800)


class FakePrometheus:
    """p99 one healthy series; CTR as `ctr(ts)` gives it."""

    def __init__(self, ctr: Any) -> None:
        self.ctr = ctr

    def query_range(self, query: str, start: float, end: float, step: float | None = None, *,
                    name: str | None = None) -> list[Series]:
        ts = np.arange(np.ceil(start / 60) * 60, end + 1e-9, 60.0)
        if query == P99_QUERY:
            return [Series(name or query, {}, ts, np.full(len(ts), 0.1))]
        return self.ctr(name or query, ts) if query == CTR_QUERY else []


def _gather(tmp_path: Any, prometheus: FakePrometheus) -> tuple[RawSignals, dict[str, Finding]]:
    cfg = make_config(tmp_path)
    store = Store(cfg.store.url)
    health = SourceHealth.for_sources({"prometheus": "http://127.0.0.1:9"}, VigilMetrics(), lambda: T0)
    samples = SampleReader(cfg, store)
    refs = ReferenceChooser(cfg, store, serving_registry(), samples, lambda: T0)
    raw = gather(Sources(prometheus, health, samples, refs, LogTraceSources(), 60.0),
                 GatherRequest(cfg.model(MODEL), W, "1", None))
    return raw, {f.entity: f for f in raw.gaps.findings if f.kind is FindingKind.NO_DATA}


def test_a_kpi_query_returning_several_series_is_a_gap_not_its_first_series(tmp_path: Any) -> None:
    def per_pod(name: str, ts: np.ndarray) -> list[Series]:
        old = ts[ts < T0 - 1200]  # the old pod stopped 20 min ago at a healthy 0.05; the new one: 0.01 now
        return [Series(name, {"pod": "recsys-a"}, old, np.full(len(old), 0.05)),
                Series(name, {"pod": "recsys-b"}, ts, np.full(len(ts), 0.01))]

    raw, gaps = _gather(tmp_path, FakePrometheus(per_pod))
    assert [s.name for s in raw.kpis] == []
    assert "ctr" in gaps, raw.gaps.findings
    assert "2 series" in gaps["ctr"].message and "aggregate" in gaps["ctr"].message
    assert [s.name for s in raw.slos] == ["p99_latency"]


def test_a_kpi_that_is_nan_lately_is_judged_on_its_real_points_not_a_gap(tmp_path: Any) -> None:
    def stopped(name: str, ts: np.ndarray) -> list[Series]:  # 0.05 until 20 minutes ago, then 0/0
        return [Series(name, {}, ts, np.where(ts < T0 - 1200, 0.05, np.nan))]

    raw, gaps = _gather(tmp_path, FakePrometheus(stopped))
    assert "ctr" not in gaps and not raw.gaps.blind, raw.gaps.findings
    assert [s.name for s in raw.kpis] == ["ctr"] and [s.name for s in raw.slos] == ["p99_latency"]


def test_a_ratio_that_is_nan_all_window_says_so_not_that_the_query_matched_nothing(tmp_path: Any) -> None:
    """0/0 on every step (no traffic at all): Prometheus returns the series, of NaN. "The
    query returned no series" sent the SRE to look for a typo in a query that matches.
    No traffic is a blind line (no all clear), not a no-data finding (no page)."""
    def idle(name: str, ts: np.ndarray) -> list[Series]:
        return [Series(name, {}, ts, np.full(len(ts), np.nan))]

    raw, gaps = _gather(tmp_path, FakePrometheus(idle))
    assert "ctr" not in gaps and [s.name for s in raw.kpis] == [], raw.gaps.findings
    (line,) = [b for b in raw.gaps.blind if b.startswith("ctr:")]
    assert "no series" not in line
    assert "NaN" in line and "no traffic" in line
