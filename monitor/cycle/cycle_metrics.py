"""Vigil's own metrics for one cycle, and what the cycle asks of its drift findings."""
from __future__ import annotations

from correlators.incident import Incident
from detectors.records import FindingKind
from monitor.config import ModelConfig
from monitor.cycle.apply import Applied
from monitor.metrics import VigilMetrics
from monitor.types import Detection, RawSignals

DRIFT_KINDS = (FindingKind.FEATURE_DRIFT, FindingKind.PREDICTION_DRIFT)


def has_drift(incident: Incident | None) -> bool:
    return incident is not None and any(f.kind in DRIFT_KINDS for f in incident.findings)


def record_cycle(metrics: VigilMetrics, m: ModelConfig, t: float, raw: RawSignals, found: Detection,
                 applied: Applied, interval: float) -> None:
    """Vigil's own metrics for one cycle of `m` at `t` (`interval`: the schedule's)."""
    if raw.all_samples is not None:
        metrics.count_samples(m.name, raw.all_samples, t, interval)
    metrics.publish_kpis(m.name, found.kpi_levels)
    moved = {f.entity for f in found.findings if f.kind in DRIFT_KINDS}
    metrics.set_feature_drift(m.name, found.drift_statistics, moved)
    metrics.count_findings(m.name, [str(f.kind) for f in found.findings], len(raw.gaps.partial))
    if applied.opened and applied.severity is not None:
        metrics.incidents_total.labels(m.name, applied.severity).inc()
    metrics.set_model_state(m.name, applied.severity)
