"""A challenger that got no traffic, told without a `traffic_query`: every KPI and SLO it
was judged on reads 0 at every step. Its latency then looks better than the champion's and
its CTR 100 % worse, so it would pass (and be promoted) on nothing: what would pass is
inconclusive, as too little traffic is with a `traffic_query`. A fail stands: without a
traffic count a CTR at 0 is as much a challenger that collapsed (its clicks gone, its
errors none) as one that got no calls, and pulling a challenger that got none costs
nothing. A 0 on some metrics only is a reading, judged as it is.

A KPI's or SLO's `volume_query` (the requests behind its values, e.g. an error rate's
denominator) split by version tells the two apart without a `traffic_query`: the
challenger's volume above 0 (and at least `min_traffic`) makes its zeros readings (an
error-rate-only model's good challenger was inconclusive every cycle, never promoted); below,
or unread, they stay no evidence. Asked only when every series reads 0.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np

from detectors.canary import MetricVerdict, Verdict


def all_zero(values: Sequence[np.ndarray]) -> bool:
    """Every series has a finite point and every finite point is 0."""
    finite = [v[np.isfinite(v)] for v in (np.asarray(x, dtype=np.float64) for x in values)]
    return bool(finite) and all(len(f) and not np.any(f != 0) for f in finite)


def zero_as_no_traffic(verdicts: list[MetricVerdict], challenger_values: Sequence[np.ndarray], challenger: str,
                       volume: Callable[[], float | None] = lambda: None, min_traffic: float = 0.0
                       ) -> list[MetricVerdict]:
    """`verdicts` with each metric that would pass or be marginal inconclusive when the
    challenger's series all read 0 (a fail stands) and its `volume()` (mean requests/s, None:
    unknown) does not say it served at least `min_traffic` (as a traffic_query must: no errors
    among 3 requests in 5 minutes passed and promoted where 1 req/s was asked for)."""
    if not all_zero(challenger_values):
        return verdicts
    served = volume()
    if served is not None and served > 0 and served >= min_traffic:
        return verdicts
    said = ("(" if served is None else "(its volume_query reads 0 too; " if served <= 0
            else f"(its volume_query reads {served:.3g}/s < min_traffic {min_traffic:g}/s; ")
    why = (f"challenger v{challenger}: every KPI and SLO reads 0 at every step of the window: no traffic? "
           + said + "set traffic_query to judge its traffic)")
    return [dataclasses.replace(v, verdict=Verdict.INCONCLUSIVE, reason=why)
            if v.kind == "metric" and v.verdict in (Verdict.PASS, Verdict.MARGINAL) else v for v in verdicts]
