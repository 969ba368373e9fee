"""The root-cause metric series (`root_cause.metrics`) scored as the RCA benchmarks score a
case's metrics: the same detector (detectors/service_metrics.py), fitted on the normal
period and assessing the window, then handed with the log and trace evidence to the same
ranking (correlators/services.py, from the correlate stage).

The normal period. The benchmarks fit on a normal recording of the same system and day
(`normal/` of a Nezha-format folder); here it is the period before the window that the
KPI baselines use: `schedule.baseline` before the lookback, frozen where it was before
onset while an incident is open, so a lasting failure never becomes the new normal. The
benchmark's "recent history" (a case's points before its window, for the level when the
normal period was recorded long ago) is that same period here, so the window's points are
all that is assessed. A series with no normal samples has no verdict and the diagnosis
says so (`lacking`); so does a metric Prometheus could not give.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from correlators.coverage import what_lacked
from detectors.metric_meaning import MetricClass
from detectors.records import Finding, Series
from detectors.service_metrics import ServiceMetricsDetector, ServiceMetricsParams, ServiceMetricsReport
from monitor.types import ServiceMetricSignals, Window

PARAMS = ServiceMetricsParams()  # the shipped configuration (benchmarks.rca_nezha.CONFIG.metrics)


@dataclass(frozen=True)
class ServiceMetricResult:
    report: ServiceMetricsReport
    window: list[Series]  # the series' points in the window (the coverage of each service)
    lacking: list[str]  # what the diagnosis lacked of these metrics


def between(series: list[Series], start: float, end: float, *, closed: bool = True) -> list[Series]:
    """Each series' finite points in [start, end] ([start, end) unless `closed`); series
    with none left out."""
    out = []
    for s in series:
        before_end = s.timestamps <= end if closed else s.timestamps < end
        keep = (s.timestamps >= start) & before_end & np.isfinite(s.values)
        if keep.any():
            out.append(Series(s.name, s.labels, s.timestamps[keep], s.values[keep]))
    return out


def detect_service_metrics(sig: ServiceMetricSignals, w: Window, params: ServiceMetricsParams = PARAMS
                           ) -> ServiceMetricResult:
    detector = ServiceMetricsDetector(params)
    # The window's first point belongs to the window (the normal period ends where it starts).
    normal = between(sig.series, w.baseline_start, w.baseline_end, closed=False)
    window = between(sig.series, w.start, w.t)
    state = detector.fit(normal, w.baseline_start, w.baseline_end)
    meanings = {k: MetricClass(v) for k, v in sig.meanings.items()}
    report = detector.assess(state, window, w.start, w.t, meanings) if window else ServiceMetricsReport()
    return ServiceMetricResult(report, window, metrics_lacking(sig, len(window), len(normal)))


def metrics_lacking(sig: ServiceMetricSignals, window: int, normal: int) -> list[str]:
    """One line when no metric could be read (a dead Prometheus): it says why; else the
    benchmark's lines from the series counts, and which metrics were not read."""
    if sig.unread and len(sig.unread) == len(sig.names):
        return [f"no metrics: none of the root-cause metrics could be read ({'; '.join(sig.unread)})"]
    out = what_lacked({"metrics": window}, {"metrics": normal}, modalities=("metrics",))
    if sig.unread:
        out.append(f"root-cause metrics not read: {'; '.join(sig.unread)}")
    return out


def tag(findings: list[Finding], model: str) -> list[Finding]:
    for f in findings:
        f.model = model
    return findings
