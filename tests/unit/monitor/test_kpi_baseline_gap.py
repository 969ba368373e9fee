"""A KPI whose baseline hour holds (almost) no points cannot be judged: the cycle says so
(a no-data finding and a blind line) rather than reading as all clear."""
from __future__ import annotations

import numpy as np
import pytest

from detectors.records import FindingKind, Series
from tests.helpers_vigil import CTR_QUERY, MODEL, P99_QUERY, T0, StubPrometheus, make_config, make_vigil


class LostPoints(StubPrometheus):
    """A NaN of the curve is a point Prometheus does not have (left out), as a lost hour is:
    a NaN it returns is 0/0, no traffic (tests/unit/monitor/test_kpi_no_traffic.py)."""

    def query_range(self, *args, **kwargs) -> list[Series]:
        return [Series(s.name, s.labels, s.timestamps[~np.isnan(s.values)], s.values[~np.isnan(s.values)])
                for s in super().query_range(*args, **kwargs)]


@pytest.mark.parametrize("lost_until", [T0 - 1800, T0 - 1799], ids=["one-edge-point-left", "none-left"])
def test_a_kpi_without_baseline_points_is_blind_not_all_clear(tmp_path, lost_until):
    # CTR is normally 0.10; Prometheus lost the hour before the window (a restart, a retention
    # gap, a new recording rule), and inside the window CTR is at 0.05.
    prom = LostPoints({CTR_QUERY: lambda ts: np.where(ts < lost_until, np.nan, 0.05),
                           P99_QUERY: lambda ts: np.full(len(ts), 0.2)})
    report = make_vigil(make_config(tmp_path), prometheus=prom).run_cycle(MODEL, T0)
    gaps = [f for f in report.findings if f.kind is FindingKind.NO_DATA and f.entity == "ctr"]
    assert gaps and "baseline" in gaps[0].message, report.findings
    assert "ctr: no baseline points" in report.blind


def test_a_kpi_with_its_baseline_is_judged_as_before(tmp_path):
    prom = StubPrometheus({CTR_QUERY: lambda ts: np.where(ts < T0 - 1800, 0.10, 0.05),
                           P99_QUERY: lambda ts: np.full(len(ts), 0.2)})
    report = make_vigil(make_config(tmp_path), prometheus=prom).run_cycle(MODEL, T0)
    assert [f.entity for f in report.findings if f.kind is FindingKind.KPI_DROP] == ["ctr"]
    assert not [f for f in report.findings if f.kind is FindingKind.NO_DATA]
