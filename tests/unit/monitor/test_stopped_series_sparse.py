"""A healthy KPI from a recording rule evaluated every 15 minutes, read at a 60 s step:
Prometheus answers each step with the latest sample of the last 5 minutes, so the result
has 60 s points for 5 minutes after each sample and none for the next 10. That rhythm is
the series' own (its largest gap in the window), not a stop."""
from __future__ import annotations

import numpy as np

from detectors.records import FindingKind, Series
from tests.helpers_vigil import CTR_QUERY, MODEL, P99_QUERY, T0, StubPrometheus, make_config, make_vigil

RULE_EVERY = 900.0  # recording-rule evaluation interval (15 min)
LOOKBACK_DELTA = 300.0  # Prometheus' default --query.lookback-delta


class LookbackPrometheus(StubPrometheus):
    """Samples every RULE_EVERY s; a range query point at tau exists iff a sample is in (tau - 5m, tau]."""

    def query_range(self, query, start, end, step=None, *, name=None):
        step = step or 60.0
        grid = np.round(np.arange(np.ceil(start / step) * step, end + 1e-3, step))
        last_sample = np.floor(grid / RULE_EVERY) * RULE_EVERY
        ts = grid[grid - last_sample < LOOKBACK_DELTA]
        if query == CTR_QUERY:
            return [Series(name or query, {}, ts, np.full(len(ts), 0.05))]
        if query == P99_QUERY:
            return [Series(name or query, {}, ts, np.full(len(ts), 0.1))]
        return []


def test_a_live_series_recorded_every_15_minutes_is_not_stopped(tmp_path):
    cfg = make_config(tmp_path, policy={"anomaly_threshold": 1})
    v = make_vigil(cfg, prometheus=LookbackPrometheus())
    base = np.ceil(T0 / RULE_EVERY) * RULE_EVERY
    stopped = []
    for k in range(15):  # fifteen cycles, one a minute, across one rule interval
        r = v.run_cycle(MODEL, base + 60 * k)
        stopped += [(k, f.entity) for f in r.findings if f.kind is FindingKind.NO_DATA]
    assert not stopped, f"live series reported stopped at minutes {stopped}"
