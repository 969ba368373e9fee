"""A replica's /metrics after it hands models over (scale-up, rebalance) on a real
PostgreSQL: the per-model gauges it set while it held a model go with the model, so
dashboards (`max by (model)`, `sum by (model)` over every replica) and Vigil's alert
rules read the new owner, not a frozen copy of the old one's last verdict."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from prometheus_client import generate_latest

from monitor.metrics import VigilMetrics
from monitor.ownership import LeasedOwnership
from monitor.replicas import LeaseTiming, Membership
from monitor.store.repository import Store
from tests.helpers_replicas import fresh_schema_url

TIMING = LeaseTiming.for_interval(1.5)


@pytest.fixture
def stores(postgres_url: str) -> Iterator[list[Store]]:
    url = fresh_schema_url(postgres_url)
    made = [Store(url) for _ in range(2)]
    yield made
    for s in made:
        s.close()


def series(metrics: VigilMetrics, name: str, model: str) -> list[str]:
    text = generate_latest(metrics.registry).decode()
    return [line for line in text.splitlines() if line.startswith(name + "{") and f'model="{model}"' in line]


def test_a_replica_that_hands_a_model_over_stops_exporting_its_state(stores: list[Store]) -> None:
    models = [f"m{i:02d}" for i in range(20)]
    metrics = VigilMetrics()
    a = LeasedOwnership(Membership(stores[0], TIMING), forget=metrics.forget_model)
    a.tick(models)
    assert set(a.membership.owned()) == set(models)
    for m in models:  # A's last verdicts: every model critical, three failed cycles in a row
        metrics.init_model(m)
        metrics.set_model_state(m, "critical")
        metrics.set_feature_drift(m, [("age", "psi", 0.4)], {"age"})
        for _ in range(3):
            metrics.cycle_failed(m, RuntimeError("store refused the write"))
    b = Membership(stores[1], TIMING)
    b.tick(models)  # B joins; A still holds everything
    a.tick(models)  # A's rebalance hands B its share
    moved = sorted(set(models) - set(a.membership.owned()))
    kept = sorted(a.membership.owned())
    assert moved and kept
    for m in moved:  # B's cycles say what these models are now; A says nothing any more
        for name in ("vigil_model_state", "vigil_incidents_open", "vigil_consecutive_failed_cycles",
                     "vigil_feature_drift"):
            assert series(metrics, name, m) == [], (name, m)
        assert series(metrics, "vigil_rollbacks_total", m)  # counters stay: increase() over replicas sums
    for m in kept:
        assert series(metrics, "vigil_model_state", m) == [f'vigil_model_state{{model="{m}"}} 2.0']
        assert f'vigil_consecutive_failed_cycles{{model="{m}"}} 3.0' in series(
            metrics, "vigil_consecutive_failed_cycles", m)
    assert metrics.liveness.snapshot().keys() == set(kept)  # /readyz judges only what A still runs
