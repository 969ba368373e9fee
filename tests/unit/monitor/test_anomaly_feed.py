"""How the daemon feeds its series to the online anomaly detector: values Prometheus
really returns (+Inf from histogram_quantile) must not corrupt a series' learnt state."""
from __future__ import annotations

import numpy as np

from detectors.records import FindingKind
from tests.helpers_vigil import CTR_QUERY, MODEL, P99_QUERY, T0, StubPrometheus, make_config, make_vigil


def _ctr(ts: np.ndarray) -> np.ndarray:
    return 0.05 + np.random.default_rng(ts.astype(np.int64) % 9973).normal(0, 0.0003, len(ts))


def _p99(inf_at: float | None, jump_from: float):
    """p99 latency ~0.2 s; +Inf at one step (more than 1 % of requests past the top
    bucket: histogram_quantile's answer), ten times higher from `jump_from`."""
    def curve(ts: np.ndarray) -> np.ndarray:
        v = 0.2 + np.random.default_rng(ts.astype(np.int64) % 7919).normal(0, 0.01, len(ts))
        v = np.where(ts >= jump_from, 2.0, v)
        return np.where(ts == inf_at, np.inf, v) if inf_at is not None else v
    return curve


def _p99_anomalies(tmp_path, inf_at: float | None) -> list:
    jump = T0 + 6 * 3600
    tmp_path.mkdir()
    prom = StubPrometheus({CTR_QUERY: _ctr, P99_QUERY: _p99(inf_at, jump)})
    vigil = make_vigil(make_config(tmp_path), prometheus=prom, notifiers={})
    found = []
    for t in [T0 + i * 600 for i in range(6 * 6 + 2)]:
        report = vigil.run_cycle(MODEL, t)
        found += [f for f in report.findings if f.kind == FindingKind.METRIC_ANOMALY
                  and f.entity.startswith("p99") and f.window_end >= jump]
    return found


def test_one_infinite_p99_point_does_not_blind_the_detector_to_a_later_jump(tmp_path):
    assert _p99_anomalies(tmp_path / "clean", None)  # the jump is flagged on a clean series
    assert _p99_anomalies(tmp_path / "inf", T0 + 2 * 3600)  # ... and after a +Inf hours before it
