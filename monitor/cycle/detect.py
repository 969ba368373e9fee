"""Stage 2, detect: raw signals in, findings out. No I/O: the detectors are pure and
their state (the online anomaly detector's, per series) comes in and goes out.

Findings come out per signal family in a fixed order (KPIs, SLOs, GPU, logs and traces,
root-cause metrics, drift), each signal's gap standing where its findings would have
stood, so an incident's story reads the same whatever failed.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from correlators.call_graph import given_graph
from correlators.coverage import observed_modalities
from detectors.anomaly import AnomalyParams, AnomalyState, AnomalyTuning, OnlineAnomalyDetector
from detectors.base import NoState
from detectors.gpu import GpuDetector, GpuParams, GpuSignal, reporting, stopped_while_saturated
from detectors.kpi import KpiDetector, KpiParams
from detectors.records import Direction, Finding, FindingKind, Series
from detectors.slo import SloDetector, SloParams
from detectors.traces import ServiceGraph
from monitor.config import ModelConfig, PolicyConfig
from monitor.cycle.anomaly_state import (
    anomaly_key,
    drop_unconfigured_states,
    legacy_anomaly_key,
    store_anomaly_state,
    stored_anomaly_state,
    usable_state,
)
from monitor.cycle.detect_drift import detect_sample_drift
from monitor.cycle.detect_logs_traces import detect_logs_traces
from monitor.cycle.detect_services import detect_service_metrics, tag
from monitor.cycle.gather import gpu_queries, service_metric_entity
from monitor.cycle.plan import CycleStart
from monitor.types import Detection, MetricSignal, RawSignals, ServiceEvidence, Window, no_data

MIN_BASELINE_POINTS = 3  # fewer in a KPI's baseline hour (a gap, a series just created): it cannot be judged
log = logging.getLogger("vigil.detect")


@dataclass(frozen=True)
class DetectRequest:
    """What detection of one model's window needs besides the raw signals."""

    model: ModelConfig
    policy: PolicyConfig
    window: Window
    step: float  # the Prometheus step the series were queried at
    interval: float  # the cycle interval (a KPI's "recent" span is three of them)
    anomaly: AnomalyTuning  # one configuration for every series
    start: CycleStart  # the stored detector state and whether an incident is open


class GapQueue:
    """gather's gaps, handed out by entity in the order they were found. Two signals may
    share a name (a KPI and an SLO): each keeps its own gap."""

    def __init__(self, findings: list[Finding]) -> None:
        self._left = list(findings)

    def take(self, entity: str) -> list[Finding]:
        """The first gap left for `entity` (as a list of zero or one)."""
        for i, f in enumerate(self._left):
            if f.entity == entity:
                return [self._left.pop(i)]
        return []

    def rest(self) -> list[Finding]:
        """Gaps no family claimed: still reported, never dropped."""
        out, self._left = self._left, []
        return out


Family = Callable[[RawSignals, DetectRequest, Detection, GapQueue], None]


def detect(raw: RawSignals, req: DetectRequest) -> Detection:
    out = Detection(detector_state=dict(req.start.detector_state))
    gaps = GapQueue(raw.gaps.findings)
    families: tuple[tuple[str, Family], ...] = (
        ("kpis", detect_kpis), ("slos", detect_slos), ("gpu", detect_gpu), ("logs_traces", _logs_traces),
        ("service_metrics", _service_metrics), ("call_graph", _call_graph), ("drift", _drift))
    for name, family in families:
        out.findings.extend(gaps.take(name))  # the whole family failed while gathering
        try:
            family(raw, req, out, gaps)
        except Exception as e:  # reported as blindness, never as all clear
            log.exception("detection failed", extra={"model": req.model.name, "family": name})
            out.blind.append(f"detect_{name}: {type(e).__name__}: {e}")
            out.findings.append(no_data(req.model.name, name, f"internal error: {type(e).__name__}: {e}",
                                        req.window))
    out.findings.extend(gaps.rest())
    mark_partial(out.findings, raw.gaps.partial)
    signals = [(k.name, k.query, k.volume_query) for k in req.model.kpis] + \
              [(s.name, s.query, s.volume_query) for s in req.model.slos]
    for key in drop_unconfigured_states(out.detector_state, signals):
        # why a series warms up again: its query changed, or its signal went
        log.info("anomaly state dropped: no KPI or SLO has its name and queries any more",
                 extra={"model": req.model.name, "state_key": key})
    return out


def mark_partial(findings: list[Finding], partial: dict[str, str]) -> None:
    """A finding about a signal read from a partial answer says so and why (Slack, the API):
    its number may be a store's missing share, not the model's."""
    for f in findings:
        if f.entity in partial and f.kind != FindingKind.NO_DATA:
            f.evidence["partial"] = partial[f.entity]


def said_partial(findings: list[Finding], why: str) -> list[Finding]:
    """`findings`, each saying it was read from a partial answer (`why`, "" when whole): for
    the findings whose entity is no signal name `mark_partial` knows (a GPU node, a
    service's metric, a labelled series)."""
    for f in findings if why else ():
        if f.kind != FindingKind.NO_DATA:
            f.evidence["partial"] = why
    return findings


def _anomalies(sig: MetricSignal, direction: Direction, req: DetectRequest, out: Detection) -> None:
    """Online anomaly scoring: only points newer than the stored state are scored, so
    overlapping windows cost nothing twice and a restart is not a cold start."""
    threshold = req.policy.anomaly_threshold
    if threshold >= 1:
        return
    key = anomaly_key(sig.name, sig.series, sig.query, sig.volume_query)
    # bins only for series sampled finer, and small enough that the bin open at this cycle
    # is still inside the next cycle's window (the config refuses a setting that is not)
    w = req.window
    resolution = min(req.policy.anomaly_resolution, w.t - w.start - req.interval)
    resolution = resolution if resolution > req.step else 0.0
    detector = OnlineAnomalyDetector(AnomalyParams(threshold, direction, req.model.name, req.anomaly, resolution))
    legacy = legacy_anomaly_key(sig.name, sig.series)
    stored = stored_anomaly_state(out.detector_state, key, legacy)
    if usable_state(stored):
        state, source, volume = AnomalyState.from_dict(stored or {}), sig.series, sig.volume
    elif sig.history is not None:
        state, source, volume = detector.new_state(), sig.history, sig.volume_history
    else:
        state, source, volume = detector.new_state(), sig.series, sig.volume
    # A stored state this version cannot resume: gather read no history for its key, so it
    # goes (and this window's state is not kept) and the next cycle reads a day of history.
    relearn = stored is not None and not usable_state(stored) and sig.history is None
    if relearn:
        out.detector_state.pop(key, None)
        out.detector_state.pop(legacy, None)
    last = state.series.last_timestamp
    if resolution == 0.0 and last is not None:
        # Prometheus evaluates a range at start, start + step, ...: each cycle's points sit on
        # its own grid, ending at its own time. A cycle started a little later than the last
        # puts the point it scored last a fraction of a step later, as if new (each value
        # learnt, and surprising, twice); cycles closer than a step apart would each give a
        # point (a 5-minute series judged every minute). The next point is a step after the
        # last, give or take the cycles' jitter.
        source = source.between(last + req.step - 0.5 * min(req.step, req.interval), math.inf)
    # A first look at a day of history reports only what is still going on in the window.
    found = detector.score_volume(state, source, volume, req.window.start, req.window.t)
    why = "; ".join(x for x in (source.partial, f"volume: {volume.partial}" if volume and volume.partial else "") if x)
    out.findings.extend(said_partial(found, why))  # its entity is the series' labels
    if sig.history_missed or relearn:
        return  # kept, this state would never be given its day of history: gather asks again next cycle
    if why:
        # Scored, not learnt: a store's missing share learnt as "normal" hides the same drop
        # for hours after the store is back. The stored state stays where it was, so the
        # next whole read scores and learns these points (those still in its range).
        return
    store_anomaly_state(out.detector_state, key, legacy, state.to_dict())


def detect_kpis(raw: RawSignals, req: DetectRequest, out: Detection, gaps: GapQueue) -> None:
    w, signals = req.window, {s.name: s for s in raw.kpis}
    recent = max(req.interval * 3, 300.0)
    for k in req.model.kpis:
        sig = signals.get(k.name)
        if sig is None:
            out.findings.extend(gaps.take(k.name))
            continue
        kpi = KpiDetector(KpiParams(k.name, k.direction, k.drop_pct or req.policy.kpi_drop_critical_pct, recent,
                                    req.model.name))
        state = kpi.fit(sig.series, *w.kpi_baseline())
        base = sig.series.between(*w.kpi_baseline()).values
        if int(np.count_nonzero(~np.isnan(base))) >= MIN_BASELINE_POINTS:
            pass
        elif len(base) >= MIN_BASELINE_POINTS:  # answered with 0/0: no traffic (dawn after an idle night)
            out.blind.append(f"{k.name}: no traffic in its baseline (0/0, NaN): a drop cannot be judged")
        else:  # blind to a drop, not all clear
            why = "no points in its baseline (the hour before the window): a drop cannot be judged"
            out.findings.append(no_data(req.model.name, k.name, why, w, query=k.query))
            out.blind.append(f"{k.name}: no baseline points")
        levels = kpi.levels(state, sig.series, w.start, w.t)
        if levels:
            out.kpi_levels[k.name] = (levels.current, levels.baseline)
        out.findings.extend(kpi.score(state, sig.series, w.start, w.t))
        _anomalies(sig, k.direction, req, out)


def detect_slos(raw: RawSignals, req: DetectRequest, out: Detection, gaps: GapQueue) -> None:
    w, signals = req.window, {s.name: s for s in raw.slos}
    for slo in req.model.slos:
        sig = signals.get(slo.name)
        if sig is None:
            out.findings.extend(gaps.take(slo.name))
            continue
        slo_check = SloDetector(SloParams(slo.name, slo.threshold, slo.comparison == "above", req.step, slo.unit,
                                          req.model.name))
        idle_since = _idle_since(sig.series.between(w.start, w.t), w.t, 1.5 * req.step)
        if idle_since is not None and slo_check.score(NoState(), sig.series, w.start, idle_since):
            # Breached up to its last real point, 0/0 (no traffic) since: neither a breach now
            # (idle cycles must not extend the consecutive-cycles streak) nor an all clear
            # (the incident must not resolve on silence). Blind, streak held. A coarse series
            # (a rule every 15 min) has no point at all in its gaps: that is no 0/0.
            ago = f"{(w.t - idle_since) / 60:.0f} min ago"
            idle = len(sig.series.between(idle_since, w.t).timestamps) > 1
            out.blind.append(f"{slo.name}: breached until traffic stopped {ago} (0/0 since): not judged" if idle
                             else f"{slo.name}: breached at its last point {ago} (none since): not judged")
        else:
            breach = slo_check.score(NoState(), sig.series, w.start, w.t)
            out.slo_breached[slo.name] = bool(breach)
            out.findings.extend(breach)
        _anomalies(sig, Direction.UP if slo.comparison == "above" else Direction.DOWN, req, out)


def _idle_since(s: Series, t: float, tolerance: float) -> float | None:
    """The last real (non-NaN) point's time when every point after it, up to `t`, is 0/0
    (NaN: no traffic) for longer than `tolerance`; None when the series is live at `t`."""
    real = s.timestamps[~np.isnan(s.values)]
    if len(real) == 0 or t - float(real[-1]) <= tolerance:
        return None
    return float(real[-1])


# GPUs that stopped reporting while saturated, {signal: {entity: [last seen, last value]}}:
# kept in the model's detector state, so a node gone longer than the window ago stays
# missing (never calm) until it reports again or `dead_node_hold` passes. Reading the GPU
# series back over the whole hold every cycle instead cost 14 ms a model (6x the points).
GPU_GONE = "@gpu_gone"


def detect_gpu(raw: RawSignals, req: DetectRequest, out: Detection, gaps: GapQueue) -> None:
    g, w = req.model.gpu, req.window
    if g is None:
        out.detector_state.pop(GPU_GONE, None)
        return
    limits = {"gpu_util_pct": GpuSignal("gpu_util_pct", g.util_pct, "%"),
              "fb_used_ratio": GpuSignal("fb_used_ratio", g.fb_used_ratio),
              "kv_cache_ratio": GpuSignal("kv_cache_ratio", g.kv_cache_ratio),
              "requests_waiting": GpuSignal("requests_waiting", g.queue_waiting)}
    remembered: dict[str, dict[str, list[float]]] = out.detector_state.get(GPU_GONE) or {}
    gone: dict[str, dict[str, list[float]]] = {}
    for name in gpu_queries(g.selector):
        out.findings.extend(gaps.take(f"gpu {name}"))
        series = raw.gpu.get(name)
        if series is None:  # not read this cycle (its gap says so): what was gone stays so
            gone[name] = remembered.get(name, {})
            continue
        if series:
            gpu = GpuDetector(GpuParams(limits[name], g.min_duration, req.step, req.model.name))
            out.findings.extend(said_partial(gpu.score(NoState(), series, w.start, w.t),
                                             raw.gaps.partial.get(f"gpu {name}", "")))  # by node, not signal
        gone[name] = {e: [t, v] for e, t, v in stopped_while_saturated(
            series, limits[name].limit, w.start, w.t, req.step, g.min_duration)}
        back = reporting(series, w.start, w.t)
        gone[name].update({e: tv for e, tv in remembered.get(name, {}).items()
                           if e not in back and e not in gone[name] and w.t - tv[0] <= g.dead_node_hold})
        for entity, (t, v) in sorted(gone[name].items()):
            out.findings.append(no_data(  # one per node: two nodes gone are two findings
                req.model.name, f"gpu {name} on {entity}",
                f"{entity} stopped reporting {(w.t - t) / 60:.0f} min ago, saturated "
                f"({v:.4g} >= {limits[name].limit:.4g}) when it stopped: its exporter or node is gone",
                w, series=entity, last_value=v, last_seen=t))
    kept = {name: nodes for name, nodes in gone.items() if nodes}
    if kept:
        out.detector_state[GPU_GONE] = kept
    else:
        out.detector_state.pop(GPU_GONE, None)


def _logs_traces(raw: RawSignals, req: DetectRequest, out: Detection, gaps: GapQueue) -> None:
    result = detect_logs_traces(raw, req.model.name, req.window, req.start.detector_state)
    out.findings.extend(result.findings)
    out.detector_state.update(result.state)
    out.services = result.evidence


def _service_metrics(raw: RawSignals, req: DetectRequest, out: Detection, gaps: GapQueue) -> None:
    """The root-cause metric series, scored as the RCA benchmarks score them; the service
    evidence then holds all three modalities (coverage from the window's records)."""
    sig = raw.service_metrics
    if sig is None:
        return
    for name in sig.names:
        out.findings.extend(gaps.take(service_metric_entity(name)))
    result = detect_service_metrics(sig, req.window)
    for f in tag(result.report.findings, req.model.name):  # "<service>: <metric>", not the gap's entity
        why = raw.gaps.partial.get(service_metric_entity(str(f.evidence.get("metric") or "")), "")
        out.findings.extend(said_partial([f], why))
    ev = out.services
    out.services = ServiceEvidence(
        ev.log_findings if ev else [], ev.trace_findings if ev else [], ev.graph if ev else ServiceGraph(),
        observed_modalities(result.window, raw.logs_current, raw.spans_current), metrics=result.report,
        lacking=(*(ev.lacking if ev else ()), *result.lacking))


def _call_graph(raw: RawSignals, req: DetectRequest, out: Detection, gaps: GapQueue) -> None:
    """The given call graph joins the service evidence, which the ranking merges with the
    traces' graph (correlators.services.rank_services, as the benchmarks do)."""
    if not raw.call_graph:
        return
    ev = out.services or ServiceEvidence([], [], ServiceGraph(), {})
    out.services = replace(ev, given_graph=given_graph(raw.call_graph))


def _drift(raw: RawSignals, req: DetectRequest, out: Detection, gaps: GapQueue) -> None:
    for entity in ("samples", "training reference"):
        out.findings.extend(gaps.take(entity))
    if raw.samples is None or len(raw.samples) == 0 or raw.reference is None:
        return
    drift = detect_sample_drift(raw.samples, raw.reference, req.model, req.policy, req.window,
                                raw.reference_path)
    out.findings.extend(drift.findings)
    out.blind.extend(drift.blind)
    out.drift_statistics = drift.statistics
    out.drift_columns = drift.columns
