"""A series that stops (its target died: Prometheus omits the points, it returns no NaN) is
missing data, never an all clear: an open incident stays open while it lasts."""
from __future__ import annotations

from typing import Any

import numpy as np

from detectors.records import FindingKind, Series
from monitor.cycle.gather import STALE_AFTER_S
from tests.helpers_vigil import CTR_QUERY, MODEL, P99_QUERY, T0, StubPrometheus, make_config, make_vigil


class DyingPrometheus(StubPrometheus):
    """CTR normal; p99 over its 0.5 s SLO from T0 - 600; no point of any series from `dead_from` on."""

    def __init__(self) -> None:
        super().__init__()
        self.dead_from = float("inf")

    def query_range(self, query: str, start: float, end: float, step: float | None = None, *,
                    name: str | None = None) -> list[Series]:
        ts = np.arange(np.ceil(start / 60) * 60, end + 1e-9, 60.0)
        ts = ts[ts < self.dead_from]
        values: dict[str, Any] = {CTR_QUERY: np.full(len(ts), 0.05), P99_QUERY: np.where(ts >= T0 - 600, 0.8, 0.1)}
        if query not in values or not len(ts):
            return []
        return [Series(name or query, {}, ts, values[query])]


def test_an_open_incident_stays_open_while_its_series_have_stopped(tmp_path):
    prom = DyingPrometheus()
    cfg = make_config(tmp_path, policy={"slo_consecutive_cycles": 2, "resolve_after_cycles": 2,
                                        "anomaly_threshold": 1})
    v = make_vigil(cfg, prometheus=prom)
    opened = [v.run_cycle(MODEL, t) for t in (T0, T0 + 60)][-1]
    assert opened.step == "open" and opened.severity == "critical"
    prom.dead_from = T0 + 90  # the model server dies
    fresh = v.run_cycle(MODEL, T0 + 120)  # its points of the last minutes are still there: nothing to say yet
    assert not [f for f in fresh.findings if f.kind is FindingKind.NO_DATA]
    later = [v.run_cycle(MODEL, T0 + 90 + STALE_AFTER_S + 60 * i) for i in range(1, 6)]
    for r in later:
        gaps = {f.entity: f for f in r.findings if f.kind is FindingKind.NO_DATA}
        assert set(gaps) == {"ctr", "p99_latency"}, r.findings
        assert "the series stopped" in gaps["ctr"].message
    assert [i.status for i in v.store.all_incidents()] == ["open"]


def test_a_series_on_a_coarse_step_is_not_taken_for_stopped(tmp_path):
    prom = StubPrometheus({CTR_QUERY: lambda ts: np.full(len(ts), 0.05), P99_QUERY: lambda ts: np.full(len(ts), 0.1)},
                          step=600.0)  # a point every 10 minutes: the newest may be 9 minutes old
    cfg = make_config(tmp_path, sources={"prometheus": {"step": "10m"}}, policy={"anomaly_threshold": 1})
    v = make_vigil(cfg, prometheus=prom)
    r = v.run_cycle(MODEL, T0 + 540)
    assert not [f for f in r.findings if f.kind is FindingKind.NO_DATA], r.findings


def test_a_kpi_that_stops_during_a_long_incident_is_missing_data_not_judged_by_an_old_outage(tmp_path):
    """The incident freezes the KPI's baseline before its onset, so the KPI is read from
    there; a scrape outage of 40 minutes early in the incident is no rhythm of the series:
    when its exporter dies two hours later, the KPI is missing data within minutes, not
    after an hour (the incident resolved meanwhile)."""
    drop = T0 - 600

    def ctr(ts: np.ndarray) -> np.ndarray:
        v = np.where(ts >= drop, 0.04, 0.05)  # -20 %: the incident
        outage = (ts >= T0 + 600) & (ts < T0 + 3000)
        return np.where(outage | (ts >= T0 + 9000), np.nan, v)  # NaN: no point (left out below)

    class Prom(StubPrometheus):
        def query_range(self, query, start, end, step=None, *, name=None):
            out = super().query_range(query, start, end, step, name=name)
            return [Series(s.name, s.labels, s.timestamps[~np.isnan(s.values)], s.values[~np.isnan(s.values)])
                    for s in out]

    prom = Prom({CTR_QUERY: ctr, P99_QUERY: lambda ts: np.full(len(ts), 0.1)})
    cfg = make_config(tmp_path, policy={"resolve_after_cycles": 2, "anomaly_threshold": 1})
    v = make_vigil(cfg, prometheus=prom)
    assert v.run_cycle(MODEL, T0).step == "open"
    for t in range(int(T0) + 300, int(T0) + 9000, 300):
        v.run_cycle(MODEL, float(t))
    later = [v.run_cycle(MODEL, T0 + 9000 + STALE_AFTER_S + 60 * i) for i in range(1, 6)]
    for r in later:
        gaps = {f.entity: f for f in r.findings if f.kind is FindingKind.NO_DATA}
        assert "ctr" in gaps and "the series stopped" in gaps["ctr"].message, r.findings
    assert [i.status for i in v.store.all_incidents()] == ["open"]
