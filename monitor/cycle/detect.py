"""Stage 2, detect: raw signals in, findings out. No I/O: the detectors are pure and
their state (the online anomaly detector's, per series) comes in and goes out.

Findings come out per signal family in a fixed order (KPIs, SLOs, GPU, logs and traces,
drift), each signal's gap standing where its findings would have stood, so an incident's
story reads the same whatever failed.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from detectors.anomaly import OnlineAnomalyDetector, detect_series_anomalies
from detectors.gpu import GpuSignal, detect_gpu_saturation
from detectors.kpi import detect_kpi_change, kpi_change
from detectors.records import Direction, Finding
from detectors.slo import detect_slo_breach
from monitor.config import ModelConfig, PolicyConfig
from monitor.cycle.detect_drift import detect_sample_drift
from monitor.cycle.detect_logs_traces import detect_logs_traces
from monitor.cycle.gather import anomaly_key, gpu_queries, usable_state
from monitor.types import Detection, MetricSignal, RawSignals, Window, no_data

log = logging.getLogger("vigil.detect")


@dataclass(frozen=True)
class DetectRequest:
    """What detection of one model's window needs besides the raw signals."""

    model: ModelConfig
    policy: PolicyConfig
    window: Window
    step: float  # the Prometheus step the series were queried at
    interval: float  # the cycle interval (a KPI's "recent" span is three of them)
    anomaly: OnlineAnomalyDetector
    detector_state: dict[str, Any]  # stored per-series anomaly state, as read at cycle start


Family = Callable[[RawSignals, DetectRequest, Detection, dict[str, Finding]], None]


def detect(raw: RawSignals, req: DetectRequest) -> Detection:
    out = Detection(detector_state=dict(req.detector_state))
    gaps = {f.entity: f for f in raw.gaps.findings}
    families: tuple[tuple[str, Family], ...] = (
        ("kpis", detect_kpis), ("slos", detect_slos), ("gpu", detect_gpu), ("logs_traces", _logs_traces),
        ("drift", _drift))
    for name, family in families:
        if name in gaps:  # the whole family failed while gathering
            out.findings.append(gaps.pop(name))
        try:
            family(raw, req, out, gaps)
        except Exception as e:  # noqa: BLE001 - reported as blindness, never as all clear
            log.exception("detection failed", extra={"model": req.model.name, "family": name})
            out.blind.append(f"detect_{name}: {type(e).__name__}: {e}")
            out.findings.append(no_data(req.model.name, name, f"internal error: {type(e).__name__}: {e}",
                                        req.window))
    return out


def _anomalies(sig: MetricSignal, direction: Direction, req: DetectRequest, out: Detection) -> None:
    """Online anomaly scoring: only points newer than the stored state are scored, so
    overlapping windows cost nothing twice and a restart is not a cold start."""
    threshold = req.policy.anomaly_threshold
    if threshold >= 1:
        return
    key = anomaly_key(sig.name, sig.series)
    state = out.detector_state.get(key)
    state = state if usable_state(state) else None
    source = sig.history if state is None and sig.history is not None else sig.series
    findings, out.detector_state[key] = detect_series_anomalies(
        source, state, detector=req.anomaly, direction=direction, threshold=threshold, model=req.model.name,
        now=req.window.t)
    # A first look at a day of history reports only what is still going on in the window.
    out.findings.extend(f for f in findings if f.window_end >= req.window.start)


def detect_kpis(raw: RawSignals, req: DetectRequest, out: Detection, gaps: dict[str, Finding]) -> None:
    w, signals = req.window, {s.name: s for s in raw.kpis}
    recent = max(req.interval * 3, 300.0)
    for k in req.model.kpis:
        sig = signals.get(k.name)
        if sig is None:
            out.findings.extend([gaps.pop(k.name)] if k.name in gaps else [])
            continue
        current, baseline = sig.series.between(w.start, w.t), sig.series.between(w.baseline_start, w.baseline_end)
        f = detect_kpi_change(current, baseline, kpi=k.name, bad_direction=k.direction,
                              threshold_pct=k.drop_pct or req.policy.kpi_drop_critical_pct, model=req.model.name,
                              window_start=w.start, window_end=w.t, recent=recent)
        levels = kpi_change(current, baseline, recent=recent, window_end=w.t)
        if levels:
            out.kpi_levels[k.name] = (levels[0], levels[1])
        if f:
            out.findings.append(f)
        _anomalies(sig, k.direction, req, out)


def detect_slos(raw: RawSignals, req: DetectRequest, out: Detection, gaps: dict[str, Finding]) -> None:
    w, signals = req.window, {s.name: s for s in raw.slos}
    for slo in req.model.slos:
        sig = signals.get(slo.name)
        if sig is None:
            out.findings.extend([gaps.pop(slo.name)] if slo.name in gaps else [])
            continue
        f = detect_slo_breach(sig.series, slo=slo.name, threshold=slo.threshold, above=slo.comparison == "above",
                              model=req.model.name, window_start=w.start, window_end=w.t, step=req.step,
                              unit=slo.unit)
        out.slo_breached[slo.name] = f is not None
        if f:
            out.findings.append(f)
        _anomalies(sig, Direction.UP if slo.comparison == "above" else Direction.DOWN, req, out)


def detect_gpu(raw: RawSignals, req: DetectRequest, out: Detection, gaps: dict[str, Finding]) -> None:
    g, w = req.model.gpu, req.window
    if g is None:
        return
    limits = {"gpu_util_pct": GpuSignal("gpu_util_pct", g.util_pct, "%"),
              "fb_used_ratio": GpuSignal("fb_used_ratio", g.fb_used_ratio),
              "kv_cache_ratio": GpuSignal("kv_cache_ratio", g.kv_cache_ratio),
              "requests_waiting": GpuSignal("requests_waiting", g.queue_waiting)}
    for name in gpu_queries(g.selector):
        if f"gpu {name}" in gaps:
            out.findings.append(gaps.pop(f"gpu {name}"))
        series = raw.gpu.get(name)
        if series:
            out.findings.extend(detect_gpu_saturation(series, limits[name], model=req.model.name,
                                                      window_start=w.start, window_end=w.t,
                                                      min_duration=g.min_duration, step=req.step))


def _logs_traces(raw: RawSignals, req: DetectRequest, out: Detection, gaps: dict[str, Finding]) -> None:
    findings, causes = detect_logs_traces(raw, req.model, req.window)
    out.findings.extend(findings)
    out.service_causes = causes


def _drift(raw: RawSignals, req: DetectRequest, out: Detection, gaps: dict[str, Finding]) -> None:
    for entity in ("samples", "training reference"):
        if entity in gaps:
            out.findings.append(gaps.pop(entity))
    if raw.samples is None or len(raw.samples) == 0 or raw.reference is None:
        return
    drift = detect_sample_drift(raw.samples, raw.reference, req.model, req.policy, req.window)
    out.findings.extend(drift.findings)
    out.blind.extend(drift.blind)
    out.drift_statistics = drift.statistics
    out.drift_columns = drift.columns
