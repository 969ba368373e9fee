"""vigil_kpi_value / vigil_kpi_baseline say this cycle's levels or nothing: a KPI whose
query stopped answering (or that a reload took out of the config) must not keep its
last level and baseline in /metrics, where the dashboard draws the baseline and its
critical bound as if they were current."""
from __future__ import annotations

from pathlib import Path

from tests.helpers_vigil import CTR_QUERY, MODEL, T0, incident_prometheus, make_config, make_vigil


def test_a_kpi_no_longer_measured_leaves_metrics(tmp_path: Path) -> None:
    prom = incident_prometheus()
    vigil = make_vigil(make_config(tmp_path), prometheus=prom, notifiers={})
    sample = vigil.metrics.registry.get_sample_value
    vigil.run_cycle(MODEL, T0)
    assert sample("vigil_kpi_value", {"model": MODEL, "kpi": "ctr"}) is not None
    assert sample("vigil_kpi_baseline", {"model": MODEL, "kpi": "ctr"}) is not None
    del prom.curves[CTR_QUERY]  # the metric was renamed upstream: the query answers nothing
    vigil.run_cycle(MODEL, T0 + 60)
    assert sample("vigil_kpi_value", {"model": MODEL, "kpi": "ctr"}) is None
    assert sample("vigil_kpi_baseline", {"model": MODEL, "kpi": "ctr"}) is None
