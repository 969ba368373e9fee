"""Vigil's own /metrics when cycles run in sweep worker processes (monitor/sweep_pool.py).

Each worker process has its own registry; only the daemon's is scraped. After each chunk
of cycles a worker `take()`s what its registry changed and the daemon `apply()`s it to
its own:

- counters: the increase since the last take, added;
- gauges with a `model` label: every series of each model whose cycle succeeded in the
  chunk, in full; the daemon removes that model's series the worker no longer has (a
  feature that stopped drifting loses its series). A model always runs in the same
  worker (monitor/sweep_pool.py), so the worker's view of it is the latest;
- other gauges are the daemon's own (the outbox, the audit checkpoints) and never
  relayed: a worker's untouched copy reads 0. Source states come through
  `SourceHealth.adopt`, newest first.

Histograms and the cycle liveness (last success, failures in a row, `cycle_errors`,
`clock_backwards`) are not relayed: the daemon replays them from the chunk's reports and
failures (monitor/sweep_pool.py `adopt`), so a worker that died mid-chunk still counts as failed.

prometheus-client's multiprocess mode would do this with files per process, but it needs
the environment set before import, gives gauges per-pid semantics and drops custom
collectors: wrong for series that say "this model's state now".
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client import Counter, Gauge

from monitor.metrics import VigilMetrics

Series = tuple[tuple[str, str], ...]  # (label, value) pairs in the metric's label order
REPLAYED = frozenset({"cycle_errors", "clock_backwards"})  # counted by the daemon from the chunk's outcome


@dataclass(frozen=True)
class MetricsDelta:
    """What one worker's registry changed during a chunk, keyed by VigilMetrics attribute."""

    increments: dict[str, dict[Series, float]] = field(default_factory=dict)
    values: dict[str, dict[Series, float]] = field(default_factory=dict)
    models: frozenset[str] = frozenset()  # whose model-labelled gauges `values` holds in full


def _relayed(metrics: VigilMetrics) -> Iterator[tuple[str, Counter | Gauge]]:
    for attr, metric in vars(metrics).items():
        if isinstance(metric, Counter | Gauge) and attr not in REPLAYED:
            yield attr, metric


def _samples(metric: Counter | Gauge) -> dict[Series, float]:
    """The metric's current series; a counter's `_created` samples are not values."""
    out: dict[Series, float] = {}
    for family in metric.collect():
        for s in family.samples:
            if not s.name.endswith("_created"):
                out[tuple(s.labels.items())] = s.value
    return out


def _model(series: Series) -> str | None:
    return next((v for k, v in series if k == "model"), None)


class MetricsTap:
    """The worker's side: remembers what it sent, so each take is only the change."""

    def __init__(self, metrics: VigilMetrics) -> None:
        self.metrics = metrics
        self._sent: dict[str, dict[Series, float]] = {}

    def take(self, models: set[str]) -> MetricsDelta:
        """The change since the last take; `models`: the ones whose cycles succeeded now."""
        increments: dict[str, dict[Series, float]] = {}
        values: dict[str, dict[Series, float]] = {}
        for attr, metric in _relayed(self.metrics):
            now, before = _samples(metric), self._sent.get(attr, {})
            if isinstance(metric, Counter):
                grown = {s: v - before.get(s, 0.0) for s, v in now.items() if v > before.get(s, 0.0)}
                if grown:
                    increments[attr] = grown
            else:
                changed = {s: v for s, v in now.items() if _model(s) in models}
                if changed:
                    values[attr] = changed
            self._sent[attr] = now
        return MetricsDelta(increments, values, frozenset(models))


def apply(metrics: VigilMetrics, delta: MetricsDelta) -> None:
    """The daemon's side: add the increments, set the values, and drop each reported
    model's gauge series the worker did not report."""
    for attr, series in delta.increments.items():
        counter = getattr(metrics, attr)
        for labels, amount in series.items():
            (counter.labels(*(v for _, v in labels)) if labels else counter).inc(amount)
    for attr, metric in _relayed(metrics):
        if not isinstance(metric, Gauge):
            continue
        reported = delta.values.get(attr, {})
        for labels in _samples(metric):
            if _model(labels) in delta.models and labels not in reported:
                metric.remove(*(v for _, v in labels))
        for labels, value in reported.items():
            (metric.labels(*(v for _, v in labels)) if labels else metric).set(value)
    if delta.models:
        metrics.adopt_feature_drift(delta.models)
