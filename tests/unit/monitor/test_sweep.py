"""A sweep (one batched read, then every model's cycle) decides what per-model cycles
decide, while the cycles themselves send no Prometheus query and no registry read."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from detectors.records import Series
from monitor.config import VigilConfig
from monitor.sources.cache import BoundedCache
from monitor.sources.errors import QueryError, SourceUnavailable
from monitor.sources.samples import SampleFiles
from tests.helpers_vigil import (
    CTR_QUERY,
    MODEL,
    P99_QUERY,
    T0,
    MemoryRegistry,
    StubPrometheus,
    make_config,
    make_vigil,
    metric_value,
    model_config,
    serving_registry,
    step_curve,
)

OTHERS = ("ranker", "search")


class BatchingPrometheus(StubPrometheus):
    """The stand-in plus `query_range_many`, answering each query as it would alone."""

    def __init__(self, curves: dict[str, Any]) -> None:
        super().__init__(curves)
        self.batches: list[int] = []
        self.single: list[tuple[str, float, float]] = []  # queries asked one at a time (by a cycle)

    def query_range(self, query: str, start: float, end: float, *, name: str | None = None) -> list[Series]:
        self.single.append((query, start, end))
        return super().query_range(query, start, end, name=name)

    def query_range_many(self, queries: list[str], start: float, end: float, step: float | None = None
                         ) -> list[list[Series] | QueryError | SourceUnavailable]:
        self.batches.append(len(queries))
        out: list[list[Series] | QueryError | SourceUnavailable] = []
        for q in queries:
            try:
                out.append(StubPrometheus.query_range(self, q, start, end))
            except (QueryError, SourceUnavailable) as e:
                out.append(e)
        return out


class SweepRegistry(MemoryRegistry):
    def __init__(self, base: MemoryRegistry) -> None:
        super().__init__(aliases=base.aliases, versions=base.versions)
        self.sweep_reads = 0
        self.alias_reads = 0

    def alias_version(self, name: str, alias: str) -> str | None:
        self.alias_reads += 1
        return super().alias_version(name, alias)

    def all_aliases(self, names: list[str]) -> dict[str, dict[str, str]]:
        self.sweep_reads += 1
        return {n: {a: v for (m, a), v in self.aliases.items() if m == n} for n in names}


def _fleet() -> tuple[list[dict[str, Any]], dict[str, Any]]:
    curves: dict[str, Any] = {CTR_QUERY: step_curve(0.05, 0.045, T0 - 600), P99_QUERY: step_curve(0.1, 0.8, T0 - 600)}
    models = [model_config()]
    for i, name in enumerate(OTHERS):
        models.append(model_config(name))
        curves[f'ctr_of{{model="{name}"}}'] = step_curve(0.05, 0.05, T0)
        curves[f'p99_of{{model="{name}"}}'] = step_curve(0.1 + i / 100, 0.1, T0)
    return models, curves


def _registry() -> SweepRegistry:
    reg = serving_registry()
    for name in OTHERS:
        reg.add_version(name, "1", created_at=T0 - 30 * 86400)
        reg.aliases[(name, "champion")] = "1"
    return SweepRegistry(reg)


def _config(tmp_path: Path, models: list[dict[str, Any]]) -> VigilConfig:
    tmp_path.mkdir(parents=True, exist_ok=True)
    return make_config(tmp_path, models=models)


def test_a_sweep_decides_what_per_model_cycles_decide_with_batched_reads_only(tmp_path):
    models, curves = _fleet()
    alone_prom, swept_prom = BatchingPrometheus(curves), BatchingPrometheus(curves)
    alone_reg, swept_reg = _registry(), _registry()
    alone = make_vigil(_config(tmp_path / "alone", models), prometheus=alone_prom, registry=alone_reg)
    swept = make_vigil(_config(tmp_path / "swept", models), prometheus=swept_prom, registry=swept_reg)
    for k in range(3):
        t = T0 + 60 * k
        by_cycle = {m["name"]: alone.run_cycle(m["name"], t) for m in models}
        swept_prom.single.clear()
        by_sweep = {r.model: r for r in swept.run_sweep(t, workers=2)}
        assert set(by_sweep) == set(by_cycle)
        for name, r in by_cycle.items():
            s = by_sweep[name]
            assert (s.severity, s.step, s.incident_id is None) == (r.severity, r.step, r.incident_id is None), name
            assert sorted((f.kind, f.entity) for f in s.findings) == sorted((f.kind, f.entity) for f in r.findings)
        # every range the cycles needed came from the batches: no query of their own
        assert swept_prom.single == []
        assert len(alone_prom.single) >= 2 * len(models)
    assert swept_reg.sweep_reads == 3 and swept_reg.alias_reads == 0
    assert alone_reg.alias_reads == 3 * len(models)
    assert by_sweep[MODEL].severity is not None  # the broken model does alert in the sweep
    assert all(n <= 64 for n in swept_prom.batches)


def test_a_dead_prometheus_in_a_sweep_is_one_gap_per_signal_never_an_all_clear(tmp_path):
    models, curves = _fleet()
    prom = BatchingPrometheus(curves)
    prom.down = True
    vigil = make_vigil(_config(tmp_path, models), prometheus=prom, registry=_registry())
    reports = vigil.run_sweep(T0, workers=1)
    assert len(reports) == len(models)
    for r in reports:
        assert r.blind and any(f.kind == "no_data" for f in r.findings), r.model
    assert vigil.health.is_down("prometheus")


def test_a_failing_model_does_not_stop_the_sweep(tmp_path):
    models, curves = _fleet()
    reg = _registry()
    reg.broken_models.add("ranker")
    vigil = make_vigil(_config(tmp_path, models), prometheus=BatchingPrometheus(curves), registry=reg)
    reports = vigil.run_sweep(T0, ["ranker", "search"], workers=1)
    assert [r.model for r in reports] == ["ranker", "search"]  # the registry's sweep read is not broken
    reg.all_aliases = None  # type: ignore[assignment,method-assign]  # no sweep read: the cycle's own poll breaks
    vigil.run_sweep(T0 + 60, ["ranker", "search"], workers=1)
    assert metric_value(vigil, "vigil_consecutive_failed_cycles", model="ranker") == 0  # a poll failure is no crash


def test_bounded_cache_refuses_rather_than_thrashing():
    cache = BoundedCache(100)
    assert cache.put("a", 1, 60) and not cache.put("b", 2, 60)  # full: b is read each time, a stays
    assert cache.get("a") == 1 and cache.get("b") is None
    cache.discard("a")
    assert cache.bytes == 0 and cache.put("b", 2, 60)


def test_sample_files_drop_what_no_window_needs_and_stay_in_budget(tmp_path):
    for k in range(4):  # four files of ten minutes
        t = T0 + 600 * k + np.arange(100) * 6.0
        pd.DataFrame({"timestamp": t, "x": np.arange(100.0)}).to_parquet(tmp_path / f"{k}.parquet")
    cache = BoundedCache(10**9)
    files = SampleFiles(tmp_path, "timestamp", cache)
    assert len(files.window(T0, T0 + 2400)) == 400 and len(cache) == 4
    assert len(files.window(T0 + 1200, T0 + 2400)) == 200 and len(cache) == 2  # the first two dropped
    small = BoundedCache(1)
    files = SampleFiles(tmp_path, "timestamp", small)
    assert len(files.window(T0, T0 + 2400)) == 400 and len(small) == 0  # over budget: read, not kept


def test_feature_drift_series_only_for_features_that_moved_in_a_big_fleet():
    from monitor.metrics import VigilMetrics

    metrics = VigilMetrics()
    stats = [("age", "psi", 0.3), ("age", "ks", 0.2), ("city", "psi", 0.01)]
    metrics.set_feature_drift("m", stats, moved={"age"})
    get = metrics.registry.get_sample_value
    assert get("vigil_feature_drift", {"model": "m", "feature": "age", "statistic": "psi"}) == 0.3
    assert get("vigil_feature_drift", {"model": "m", "feature": "city", "statistic": "psi"}) is None
    metrics.set_feature_drift("m", stats, moved=set())  # age stopped moving: its series goes, none reads stale
    assert get("vigil_feature_drift", {"model": "m", "feature": "age", "statistic": "psi"}) is None
    metrics.all_feature_drift = True  # a small fleet: every feature
    metrics.set_feature_drift("m", stats, moved=set())
    assert get("vigil_feature_drift", {"model": "m", "feature": "city", "statistic": "psi"}) == 0.01
