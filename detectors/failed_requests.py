"""Availability read as failed requests, when the service also reports its request count.

An availability (or success) ratio is diluted where the failing operation is a small
share of a service's traffic and concentrated where it is most of it: a caller whose
calls all go to the broken operation loses 12 % of its 60 requests while the service
that breaks loses 3 % of its 800. Compared as percentages, the loudest victim wins;
compared as failed requests, it cannot (a caller fails at most the calls its callees
failed, retries aside). So an availability series with a request-count series of the
same service and pod beside it is replaced by `requests x (1 - availability)` at the
times both have: an error count, bad when it rises (`metric_meaning`: "fail"), judged
like any other metric against the same count in the normal period, with a Poisson
spread (`count_spread`): one failure where there were none in hundreds of periods is
news; at a service that always fails a few, it is not.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from detectors.metric_meaning import MetricClass, is_request_count, metric_class
from detectors.records import Series

NAME = "failed_requests"


def _where(s: Series) -> tuple[str, str]:
    return s.labels.get("service", ""), s.labels.get("pod", "")


def failed_requests(series: Sequence[Series]) -> list[Series]:
    """`series`, each availability series that has a request count of the same service
    and pod replaced by its failed-request count (named `failed_requests`); the rest as
    they are. A percentage (any value above 1) is read out of 100, else out of 1."""
    # Read from each name once, not per series: hundreds of pods share a few dozen names.
    names = {s.name for s in series}
    counts = {n for n in names if is_request_count(n)}
    availability = {n for n in names if metric_class(n) is MetricClass.AVAILABILITY}
    requests: dict[tuple[str, str], Series] = {}
    for s in series:
        if s.name in counts:
            requests.setdefault(_where(s), s)
    if not requests:
        return list(series)
    out: list[Series] = []
    for s in series:
        r = requests.get(_where(s))
        if r is None or not len(s.values) or s.name not in availability:
            out.append(s)
            continue
        ts, ia, ir = np.intersect1d(s.timestamps, r.timestamps, return_indices=True)
        share = s.values[ia]
        full = 100.0 if bool(np.nanmax(np.abs(share), initial=0.0) > 1.0) else 1.0
        lost = np.clip(1.0 - share / full, 0.0, 1.0) * r.values[ir]
        out.append(Series(NAME, dict(s.labels), ts.astype(np.float64), lost))
    return out


def count_spread(baseline: np.ndarray) -> float:
    """The spread of an event count at the baseline's mean rate (Poisson: its square
    root), the rate never taken below one event in the whole baseline."""
    return math.sqrt(max(float(np.mean(baseline)), 1.0 / len(baseline))) if len(baseline) else 0.0
