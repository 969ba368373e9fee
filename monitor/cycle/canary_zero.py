"""A challenger that got no traffic, told without a `traffic_query`: every KPI and SLO it
was judged on reads 0 at every step. Its latency then looks better than the champion's and
its CTR 100 % worse, so it would pass (and be promoted) on nothing: what would pass is
inconclusive, as too little traffic is with a `traffic_query`. A fail stands: without a
traffic count a CTR at 0 is as much a challenger that collapsed (its clicks gone, its
errors none) as one that got no calls, and pulling a challenger that got none costs
nothing. A 0 on some metrics only is a reading, judged as it is.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from detectors.canary import MetricVerdict, Verdict


def all_zero(values: Sequence[np.ndarray]) -> bool:
    """Every series has a finite point and every finite point is 0."""
    finite = [v[np.isfinite(v)] for v in (np.asarray(x, dtype=np.float64) for x in values)]
    return bool(finite) and all(len(f) and not np.any(f != 0) for f in finite)


def zero_as_no_traffic(verdicts: list[MetricVerdict], challenger_values: Sequence[np.ndarray], challenger: str
                       ) -> list[MetricVerdict]:
    """`verdicts` with each metric that would pass or be marginal inconclusive when the
    challenger's series all read 0 (a fail stands)."""
    if not all_zero(challenger_values):
        return verdicts
    why = (f"challenger v{challenger}: every KPI and SLO reads 0 at every step of the window: no traffic? "
           "(set traffic_query to judge its traffic)")
    return [dataclasses.replace(v, verdict=Verdict.INCONCLUSIVE, reason=why)
            if v.kind == "metric" and v.verdict in (Verdict.PASS, Verdict.MARGINAL) else v for v in verdicts]
