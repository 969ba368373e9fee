"""Step 2-3 of a cycle: pull one model's signals and run the detectors on them.

Each signal family is gathered by its own function, so a dead source costs only its
own findings (replaced by an explicit NO_DATA finding) and never the whole cycle.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from detectors.base import NoState
from detectors.gpu import GpuDetector, GpuParams, GpuSignal
from detectors.kpi import KpiDetector, KpiParams
from detectors.records import Direction, Finding, FindingKind, Series
from detectors.slo import SloDetector, SloParams
from monitor.config import ModelConfig
from monitor.sources.errors import QueryError, SourceStatus, SourceUnavailable
from monitor.sources.samples import SampleFileError, records_frame

if TYPE_CHECKING:
    from monitor.vigil import Vigil

log = logging.getLogger("vigil.signals")
MAX_SERVICE_CAUSES = 5  # the full ranking is in the RCA; an incident shows the top of it


@dataclass
class Window:
    t: float  # cycle time
    start: float  # t - lookback
    baseline_start: float
    baseline_end: float


@dataclass
class Signals:
    """Everything the detectors said about one model this cycle."""

    findings: list[Finding] = field(default_factory=list)
    slo_breached: dict[str, bool] = field(default_factory=dict)
    blind: list[str] = field(default_factory=list)  # what could not be evaluated, and why
    drift_columns: list[str] = field(default_factory=list)
    reference_path: str | None = None
    service_causes: list = field(default_factory=list)  # ranked by correlators.rca from logs + traces
    detector_state: dict = field(default_factory=dict)  # per-series anomaly detector state, persisted

    @property
    def data_complete(self) -> bool:
        return not self.blind


def no_data(model: str, entity: str, why: str, w: Window, **evidence: object) -> Finding:
    return Finding(kind=FindingKind.NO_DATA, entity=entity, model=model, value=0.0, threshold=1.0,
                   window_start=w.start, window_end=w.t, onset=w.t, score=0.3, statistic="points",
                   message=f"no data for {entity}: {why}", evidence={"reason": why, **evidence})


def _range(vigil: "Vigil", out: Signals, model: str, entity: str, query: str, start: float, w: Window,
           *, required: bool = True) -> list[Series] | None:
    """Range query that turns every failure into an explicit NO_DATA finding (None).

    An optional signal (`required=False`) may match nothing: that is [] and no finding."""
    try:
        series = vigil.prometheus.query_range(query, start, w.t, name=entity)
        vigil.mark_source("prometheus", True)
    except SourceUnavailable as e:
        vigil.mark_source("prometheus", False, str(e))
        out.blind.append(f"{entity}: prometheus unavailable")
        out.findings.append(no_data(model, entity, f"Prometheus unavailable ({e.reason})", w, query=query))
        return None
    except QueryError as e:
        out.blind.append(f"{entity}: query rejected")
        out.findings.append(no_data(model, entity, f"query rejected: {e.reason}", w, query=query))
        return None
    if not series or all(s.empty for s in series):
        if not required:
            return []
        out.blind.append(f"{entity}: no series")
        out.findings.append(no_data(model, entity, "the query returned no series", w, query=query))
        return None
    return series


ANOMALY_WARMUP_S = 86400.0  # history fed to a series' detector the first time Vigil sees it


def _anomalies(vigil: "Vigil", m: ModelConfig, name: str, query: str, series: Series, direction: "Direction",
               w: Window, out: Signals) -> None:
    """Online anomaly scoring of one series: only points newer than its stored state are
    scored, so overlapping windows cost nothing twice and a restart is not a cold start."""
    from detectors.anomaly import AnomalyParams, AnomalyState, OnlineAnomalyDetector

    threshold = vigil.config.policy_for(m).anomaly_threshold
    if threshold >= 1:
        return
    key = f"{name}|{series.label_str()}"
    detector = OnlineAnomalyDetector(AnomalyParams(threshold, direction, m.name,
                                                   vigil.anomaly_detector.params.tuning))
    state = None
    if key in out.detector_state:
        try:
            state = AnomalyState.from_dict(out.detector_state[key])
        except (KeyError, TypeError, ValueError):
            state = None  # an older state format: start afresh rather than fail every cycle
    source = series
    if state is None:
        state = detector.new_state()
        try:
            history = vigil.prometheus.query_range(query, w.t - ANOMALY_WARMUP_S, w.t, name=name)
            source = next((h for h in history if h.labels == series.labels), series)
        except (SourceUnavailable, QueryError):
            pass
    # A first look at a day of history reports only what is still going on in the window.
    out.findings.extend(detector.score(state, source, w.start, w.t))
    out.detector_state[key] = state.to_dict()


def gather_kpis(vigil: "Vigil", m: ModelConfig, w: Window, out: Signals) -> None:
    policy = vigil.config.policy_for(m)
    for k in m.kpis:
        series = _range(vigil, out, m.name, k.name, k.query, w.baseline_start, w)
        if series is None:
            continue
        s = series[0]
        recent = max(vigil.config.schedule.interval * 3, 300.0)
        kpi = KpiDetector(KpiParams(k.name, k.direction, k.drop_pct or policy.kpi_drop_critical_pct, recent, m.name))
        state = kpi.fit(s, w.baseline_start, w.baseline_end)
        levels = kpi.levels(state, s, w.start, w.t)
        if levels:
            vigil.metrics.kpi_value.labels(m.name, k.name).set(levels.current)
            vigil.metrics.kpi_baseline.labels(m.name, k.name).set(levels.baseline)
        out.findings.extend(kpi.score(state, s, w.start, w.t))
        _anomalies(vigil, m, k.name, k.query, s, k.direction, w, out)


def gather_slos(vigil: "Vigil", m: ModelConfig, w: Window, out: Signals) -> None:
    step = vigil.config.sources.prometheus.step
    for slo in m.slos:
        series = _range(vigil, out, m.name, slo.name, slo.query, w.start, w)
        if series is None:
            continue
        f = SloDetector(SloParams(slo.name, slo.threshold, slo.comparison == "above", step, slo.unit, m.name)
                        ).score(NoState(), series[0], w.start, w.t)
        out.slo_breached[slo.name] = bool(f)
        out.findings.extend(f)
        _anomalies(vigil, m, slo.name, slo.query, series[0],
                   Direction.UP if slo.comparison == "above" else Direction.DOWN, w, out)


def gpu_queries(selector: str) -> dict[str, str]:
    sel = f"{{{selector}}}" if selector else ""
    return {
        "gpu_util_pct": f"DCGM_FI_DEV_GPU_UTIL{sel}",
        "fb_used_ratio": f"DCGM_FI_DEV_FB_USED{sel} / (DCGM_FI_DEV_FB_USED{sel} + DCGM_FI_DEV_FB_FREE{sel})",
        "kv_cache_ratio": f"vllm:gpu_cache_usage_perc{sel}",
        "requests_waiting": f"vllm:num_requests_waiting{sel}",
    }


def gather_gpu(vigil: "Vigil", m: ModelConfig, w: Window, out: Signals) -> None:
    if m.gpu is None:
        return
    g = m.gpu
    limits = {"gpu_util_pct": GpuSignal("gpu_util_pct", g.util_pct, "%"),
              "fb_used_ratio": GpuSignal("fb_used_ratio", g.fb_used_ratio),
              "kv_cache_ratio": GpuSignal("kv_cache_ratio", g.kv_cache_ratio),
              "requests_waiting": GpuSignal("requests_waiting", g.queue_waiting)}
    for name, query in gpu_queries(g.selector).items():
        # DCGM utilisation is the one GPU signal every GPU node has; the vLLM ones are optional.
        series = _range(vigil, out, m.name, f"gpu {name}", query, w.start, w, required=name == "gpu_util_pct")
        if series is None:
            if vigil.sources["prometheus"].status == SourceStatus.DOWN:
                return  # each further query would only wait out the same retries
            continue
        gpu = GpuDetector(GpuParams(limits[name], g.min_duration, vigil.config.sources.prometheus.step, m.name))
        out.findings.extend(gpu.score(NoState(), series, w.start, w.t))


def current_samples(vigil: "Vigil", m: ModelConfig, start: float, end: float) -> pd.DataFrame:
    """Feature/prediction rows with start <= t <= end, from files and from the API."""
    frames = []
    files = vigil.sample_files(m)
    if files is not None:
        frames.append(files.window(start, end))
    posted = vigil.store.samples(m.name, start, end)
    if posted:
        frames.append(records_frame(posted))
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def gather_drift(vigil: "Vigil", m: ModelConfig, w: Window, out: Signals, serving_version: str | None) -> None:
    from detectors.drift import DriftDetector, DriftParams, FeatureSpec  # heavy import, only when drift is configured

    if not m.features and not m.prediction_column:
        return
    policy = vigil.config.policy_for(m)
    try:
        current = current_samples(vigil, m, w.start, w.t)
    except SampleFileError as e:
        out.blind.append(f"samples: {e}")
        out.findings.append(no_data(m.name, "samples", str(e), w))
        return
    vigil.metrics.samples.labels(m.name).inc(len(current))
    if len(current) == 0:
        out.blind.append("samples: none in window")
        out.findings.append(no_data(m.name, "samples", "no feature samples in the window", w))
        return
    specs = [FeatureSpec(f.name, f.type) for f in m.features]
    if m.prediction_column:
        specs.append(FeatureSpec(m.prediction_column, "numeric"))
    try:
        profile, ref_path = vigil.choose_reference(m, serving_version, specs, w)
    except (SampleFileError, OSError, ValueError) as e:
        out.blind.append(f"reference: {e}")
        out.findings.append(no_data(m.name, "training reference", str(e), w))
        return
    report = DriftDetector(DriftParams(statistic=policy.drift_statistic, threshold=policy.drift_warning,
                                       min_samples=policy.min_samples, model=m.name,
                                       prediction_column=m.prediction_column)).assess(profile, current, w.start, w.t)
    findings, drifts = report.findings, report.features
    out.reference_path = ref_path
    _date_drift(findings, profile, current)
    for d in drifts:
        for stat, value in d.statistics.items():
            if stat in ("psi", "ks", "wasserstein", "js", "chi2") and value is not None and np.isfinite(value):
                vigil.metrics.feature_drift.labels(m.name, d.feature, stat).set(float(value))
    for f in findings:
        if f.kind == FindingKind.NO_DATA:
            out.blind.append(f"drift {f.entity}: not enough data")
    out.drift_columns = [s.name for s in specs]
    out.findings.extend(findings)


def _date_drift(findings: list[Finding], profile: object, current: pd.DataFrame) -> None:
    """Give window-level drift findings an onset inside the window (see detectors/drift_onset.py)."""
    from detectors.drift_onset import categorical_surprise, estimate_onset, numeric_bins_position

    if "_ts" not in current.columns:
        return
    times = current["_ts"].to_numpy(dtype=float)
    cache: dict[str, float | None] = {}
    for f in findings:
        if f.kind not in (FindingKind.FEATURE_DRIFT, FindingKind.PREDICTION_DRIFT, FindingKind.DATA_QUALITY):
            continue
        col = getattr(profile, "columns", {}).get(f.entity)
        if col is None or f.entity not in current.columns:
            continue
        if f.entity not in cache:
            raw = current[f.entity]
            if hasattr(col, "edges"):
                v = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
                ok = np.isfinite(v)
                u, surprise = numeric_bins_position(v[ok], col.edges, col.edge_counts)
                cache[f.entity] = estimate_onset(times[ok], [u, surprise])
            else:
                ok = raw.notna().to_numpy()
                cache[f.entity] = estimate_onset(times[ok], [categorical_surprise(raw[ok].to_numpy(),
                                                                                   col.categories,
                                                                                   col.category_counts)])
        onset = cache[f.entity]
        if onset is not None:
            f.evidence["onset_estimate"] = "change point of per-row surprise vs the reference"
            f.onset = onset


def _pull_logs(vigil: "Vigil", services: list[str], start: float, end: float) -> list:
    out = []
    for svc in services:
        out.extend(vigil.loki.query_logs(f'{{service="{svc}"}}', start, end))
    return out


def _pull_spans(vigil: "Vigil", services: list[str], start: float, end: float) -> list:
    """Traces touching the services: a TraceQL search per service, then each trace once."""
    limit = vigil.config.sources.tempo.search_limit if vigil.config.sources.tempo else 50
    seen: set[str] = set()
    spans = []
    for svc in services:
        for summary in vigil.tempo.search(f'{{ resource.service.name = "{svc}" }}', start, end, limit=limit):
            if summary.trace_id in seen:
                continue
            seen.add(summary.trace_id)
            spans.extend(vigil.tempo.trace(summary.trace_id, start, end) or [])
    return spans


def gather_logs_traces(vigil: "Vigil", m: ModelConfig, w: Window, out: Signals) -> None:
    """Loki and Tempo for the model's services: the log and trace detectors fitted on the
    previous window, the current window scored, the findings ranked (correlators.rca),
    as the Nezha benchmark composes them; a missing modality lowers confidence but never
    stops the cycle."""
    if not m.services or (vigil.loki is None and vigil.tempo is None):
        return
    from correlators.rca import observed_modalities, rank_root_causes
    from detectors.logs import LogDetector, LogReference, LogWindow
    from detectors.traces import ServiceGraph, TraceDetector, TraceWindow

    span = w.t - w.start
    base = (w.start - span, w.start)
    logs_cur, logs_base, spans_cur, spans_base = [], [], [], []
    for name, client, pull, cur, bas in (("tempo", vigil.tempo, _pull_spans, spans_cur, spans_base),
                                         ("loki", vigil.loki, _pull_logs, logs_cur, logs_base)):
        if client is None:
            continue
        services = sorted(set(m.services) | {s.service for s in spans_cur})
        try:
            cur.extend(pull(vigil, services, w.start, w.t))
            bas.extend(pull(vigil, services, *base))
            vigil.mark_source(name, True)
        except (SourceUnavailable, QueryError) as e:
            vigil.mark_source(name, False, str(e))
            out.blind.append(f"{name}: {e}")
    if not (logs_cur or spans_cur):
        return
    # The baselines are refitted on the previous window every cycle; their states
    # (to_dict) are what a store would keep to fit them on a chosen normal period instead.
    graph = ServiceGraph()
    trace_findings: list[Finding] = []
    log_findings: list[Finding] = []
    if spans_cur:
        traces = TraceDetector()
        report = traces.assess(traces.fit(spans_base, *base), TraceWindow(spans_cur), w.start, w.t)
        graph, trace_findings = report.graph, report.findings
    if logs_cur:
        logs = LogDetector()
        log_state = logs.fit(LogReference(logs_base, spans_base), *base)
        log_findings = logs.score(log_state, LogWindow(logs_cur, spans_cur), w.start, w.t)
    causes = rank_root_causes(metric_findings=[], log_findings=log_findings, trace_findings=trace_findings,
                              topology=graph, alert_time=w.t, candidates=m.services,
                              observed=observed_modalities((), logs_cur, spans_cur))
    for f in log_findings + trace_findings:
        f.model = m.name
    out.findings.extend(log_findings + trace_findings)
    if log_findings or trace_findings:
        out.service_causes = causes[:MAX_SERVICE_CAUSES]
