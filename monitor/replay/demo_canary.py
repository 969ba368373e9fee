"""The demo's canary: a second model, `ranker`, whose challenger fails and is pulled.

  08:00        v1 has been `champion` of the ranker for a month.
  10:00        v2 takes the `challenger` alias and 10 % of the traffic; it fails about
               7 % of its requests (v1: 0.5 %).
  ~10:20       once the canary window holds enough points: the error rate fails the
               absolute rule (> 5 %) and the U test -> a warning incident for the owner
               with the verdict table, and the challenger alias is removed in MLflow.
               The recording keeps v2's series until 10:40 (it cannot react to the pull);
               Vigil no longer judges them once the alias is gone.

Self-contained: its own metrics (labelled `model_version`), registry events, config
entry and random stream, so the recommender's timeline is unchanged.
"""
from __future__ import annotations

import numpy as np

from monitor.replay.openmetrics import OpenMetricsWriter

RANKER = "ranker"
H = 3600.0
ERROR_RATE_QUERY = (f'sum(rate(ranker_errors_total{{model="{RANKER}"}}[5m]))'
                    f' / sum(rate(ranker_requests_total{{model="{RANKER}"}}[5m]))')
TRAFFIC_QUERY = f'sum(rate(ranker_requests_total{{model="{RANKER}"}}[5m]))'

CANARY_CONFIG = f"""\
  - name: {RANKER}
    alias: champion
    owner_channel: "#ranker-owners"
    policy:
      anomaly_threshold: 1   # the ranker's story is the canary alone: no online anomaly detection
    slos:
      - name: error_rate
        query: {ERROR_RATE_QUERY}
        threshold: 0.05
    canary:
      alias: challenger
      version_label: model_version
      window: 20m
      min_points: 4
      traffic_query: {TRAFFIC_QUERY}
      min_traffic: 0.5
      metrics:
        error_rate: {{fail_above: 0.05}}
"""


def canary_times(day: float) -> tuple[float, float]:
    """(challenger takes its alias, its series end) on the demo's day."""
    return day + 10 * H, day + 10 * H + 40 * 60


def canary_registry_events(month_ago: float, day: float) -> list[dict[str, object]]:
    start, _ = canary_times(day)
    return [
        {"type": "model", "name": RANKER, "at": month_ago - 3600, "description": "Search ranker"},
        {"type": "version", "name": RANKER, "version": "1", "at": month_ago - 1800},
        {"type": "alias", "name": RANKER, "alias": "champion", "version": "1", "at": month_ago},
        {"type": "version", "name": RANKER, "version": "2", "at": start - 1800},
        {"type": "alias", "name": RANKER, "alias": "challenger", "version": "2", "at": start},
    ]


def add_canary_metrics(w: OpenMetricsWriter, ts: np.ndarray, day: float, seed: int) -> None:
    """Requests and errors per version, one point a minute."""
    rng = np.random.default_rng(seed + 15)  # its own stream: the recommender's data stay as they were
    start, end = canary_times(day)
    rps = 30.0
    challenger_on = (ts >= start) & (ts < end)
    for version, share, error_rate in (("1", np.where(challenger_on, 0.9, 1.0), 0.005),
                                       ("2", np.where(challenger_on, 0.1, 0.0), 0.07)):
        req = rng.poisson(rps * share * 60).astype(float)
        err = rng.binomial(req.astype(int), error_rate).astype(float)
        labels = {"namespace": "search", "model": RANKER, "model_version": version}
        keep = np.ones(len(ts), dtype=bool) if version == "1" else ts >= start - 600
        w.add("ranker_requests_total", labels, ts[keep], np.cumsum(req)[keep], type="counter",
              help="Ranker requests")
        w.add("ranker_errors_total", labels, ts[keep], np.cumsum(err)[keep], type="counter",
              help="Ranker requests that failed")
