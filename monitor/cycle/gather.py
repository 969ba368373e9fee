"""Stage 1, gather: the sources' raw signals for one model and window, judged by nobody.

Each signal family is pulled by its own function under a guard, so a dead source or a
bug costs only that family's signals (replaced by an explicit NO_DATA finding) and
never the whole cycle. A query that matches nothing is a gap too, never an all clear.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from detectors.records import PARTIAL_WORDS, Series, partial_of
from monitor.config import ModelConfig
from monitor.config_root_cause import RootCauseConfig
from monitor.cycle.anomaly_state import anomaly_key, legacy_anomaly_key
from monitor.cycle.health import SourceHealth
from monitor.cycle.logs_traces import LogTraceSources, pull_logs_traces
from monitor.cycle.reference import ReferenceChooser
from monitor.cycle.samples import SampleReader, own_rows
from monitor.sources.errors import QueryError, SourceUnavailable
from monitor.sources.samples import SampleFileError
from monitor.types import Gaps, MetricSignal, RawSignals, ServiceMetricSignals, Window, no_data

log = logging.getLogger("vigil.gather")
ANOMALY_WARMUP_S = 86400.0  # history fed to a series' detector the first time Vigil sees it
# A required series whose newest point is older than this (or three of its own steps) before
# the cycle has stopped: Prometheus omits a dead target's points rather than return NaN, so
# the window's older points alone would read as healthy and let an open incident resolve.
STALE_AFTER_S = 300.0
NO_TRAFFIC = "no traffic: every value of the window is 0/0 (NaN), not judged"
HISTORY_TRIES = 3  # cycles a first sight's day of history Prometheus could not give is asked


@dataclass
class Sources:
    """Everything gather reads from, wired once by `Vigil`."""

    prometheus: Any
    health: SourceHealth
    samples: SampleReader
    references: ReferenceChooser
    logs_traces: LogTraceSources
    step: float  # Prometheus query step, seconds
    # (model, anomaly state key) -> cycles in a row its first-sight day of history timed out
    # (a model's cycles run one at a time, so no two threads touch one entry)
    history_misses: dict[tuple[str, str], int] = field(default_factory=dict)


@dataclass(frozen=True)
class GatherRequest:
    """One model's gather: what to read, for which window."""

    model: ModelConfig
    window: Window
    serving: str | None  # the version the alias serves now (picks the drift reference)
    known_series: Collection[str] | None  # anomaly state keys already stored; None: anomalies off
    log_baseline: bool = True  # read the window before for the log/trace baselines (a refit is due)
    root_cause: RootCauseConfig | None = None  # per-service metric series for the root-cause ranking
    # source ("loki"/"tempo") -> whether its stored baseline may stand in for a failed refresh
    can_fall_back: Callable[[str], bool] = lambda source: False


def gather(sources: Sources, req: GatherRequest) -> RawSignals:
    # The given call graph is read from the config, not a source: it comes along as is.
    raw = RawSignals(call_graph=tuple(req.root_cause.edges) if req.root_cause else ())
    families: tuple[tuple[str, Callable[[Sources, GatherRequest, RawSignals], None]], ...] = (
        ("kpis", gather_kpis), ("slos", gather_slos), ("gpu", gather_gpu), ("logs_traces", gather_logs_traces),
        ("service_metrics", gather_service_metrics), ("drift", gather_samples))
    for name, family in families:
        try:
            family(sources, req, raw)
        except Exception as e:  # reported as blindness, never as all clear
            log.exception("signal gathering failed", extra={"model": req.model.name, "family": name})
            raw.gaps.add(no_data(req.model.name, name, f"internal error: {type(e).__name__}: {e}", req.window),
                         f"gather_{name}: {type(e).__name__}: {e}")
    return raw


def query_range(sources: Sources, gaps: Gaps, req: GatherRequest, entity: str, query: str, start: float,
                required: bool = True, nan_is_idle: bool = False) -> list[Series] | None:
    """A range query whose every failure becomes an explicit NO_DATA finding (None).
    An optional signal (`required=False`) may match nothing: that is [] and no finding,
    unless the answer was partial (a blind line and `Gaps.partial`: its store may be the one down).
    `nan_is_idle` (a KPI or SLO ratio or quantile): a NaN point is 0/0, no traffic on that step, from a target
    that answers (a dead one's points are absent): no stop. A window 0/0 throughout is not
    judged (None) and is a blind line, no finding: an idle night opens no incident, and an
    open one does not resolve on it."""
    model, w = req.model.name, req.window
    try:
        series = sources.prometheus.query_range(query, start, w.t, name=entity)
        sources.health.mark("prometheus", True)
    except SourceUnavailable as e:
        sources.health.mark("prometheus", False, str(e))
        gaps.add(no_data(model, entity, f"Prometheus unavailable ({e.reason})", w, query=query, source="prometheus"),
                 f"{entity}: prometheus unavailable")
        return None
    except QueryError as e:
        why = f"query rejected: {e.reason}"  # in the blind line too: `vigil status` and /v1/models say why
        gaps.add(no_data(model, entity, why, w, query=query), f"{entity}: {why}")
        return None
    partial = partial_of(series)
    said = f" ({PARTIAL_WORDS}: {partial})" if partial else ""  # after a no-data finding's why
    if not series or all(s.empty for s in series):
        if partial:  # the store that may hold all of it did not answer: unread, never calm
            gaps.read_partially(entity, partial, nothing=True)
        if not required:
            return []
        if series and nan_is_idle:
            _no_traffic(gaps, entity, partial)
        elif series:  # it matches: every value is NaN (a ratio is 0/0 while nothing is served)
            gaps.add(no_data(model, entity, "every value of the window is NaN (a ratio with no traffic: 0/0)" + said,
                             w, query=query), f"{entity}: only NaN")
        else:
            gaps.add(no_data(model, entity, "the query returned no series" + said, w, query=query),
                     f"{entity}: no series")
        return None
    # The rhythm is judged over the span a cycle reads when no incident is open: one frozen
    # its baseline before onset, hours or days back, and an outage in there is no rhythm.
    since = w.start - (w.baseline_end - w.baseline_start)
    stopped = _stopped_for(series, w.t, since, nan_is_idle) if required else 0.0
    idle = not stopped and nan_is_idle and all(s.between(w.start, w.t).empty for s in series)
    if partial:  # its recent points may be on the store that did not answer: marked, judged or not
        gaps.read_partially(entity, partial, nothing=bool(stopped) or idle)
    if stopped:
        gaps.add(no_data(model, entity, f"no points in the last {stopped / 60:.0f} min: the series stopped "
                                        "(its target down, or renamed; or NaN: no traffic)" + said, w, query=query,
                         stopped_s=stopped), f"{entity}: stopped")
        return None
    if idle:
        _no_traffic(gaps, entity, partial)
        return None
    return list(series)


def _no_traffic(gaps: Gaps, entity: str, partial: str) -> None:
    """0/0 throughout the window. Read whole, the model served no request; read from a partial
    answer, the store that did not answer may hold all its traffic: that is "nothing to judge,
    read from a partial answer" (its line is the caller's), no "no traffic"."""
    if not partial:
        gaps.blind.append(f"{entity}: {NO_TRAFFIC}")
    gaps.idle.append(entity)


def _stopped_for(series: list[Series], t: float, since: float, nan_is_point: bool = False) -> float:
    """Seconds since the freshest series' newest value when that is longer than the series
    has been silent since `since` (a recording rule every 15 minutes read at a 60 s
    step has 10-minute holes: that is its rhythm, not a stop), else 0. A NaN point is no
    value unless `nan_is_point` (a KPI ratio: 0/0 is no traffic, from a target that answers)."""
    valued = [s.timestamps if nan_is_point else s.timestamps[~np.isnan(s.values)] for s in series if not s.empty]
    newest = max(valued, key=lambda ts: float(ts[-1]))
    gaps = np.diff(newest[newest >= since])
    usual = max(3 * float(np.median(gaps)), 1.5 * float(gaps.max())) if len(gaps) else 0.0
    silent = t - float(newest[-1])
    return silent if silent > max(STALE_AFTER_S, usual) else 0.0


def _metric(sources: Sources, req: GatherRequest, raw: RawSignals, name: str, query: str, start: float,
            volume_query: str | None, nan_is_idle: bool = False) -> MetricSignal | None:
    """The series and its volume, plus a day of both the first time the anomaly detector
    sees it. With anomalies off (`known_series` None) no volume is read: it scales nothing."""
    found = query_range(sources, raw.gaps, req, name, query, start, nan_is_idle=nan_is_idle)
    if found is None:
        return None
    if len(live := [s for s in found if not s.empty]) > 1:
        # Taking the first would judge one pod of several, and after a restart perhaps the
        # old pod's stopped series while the new one's freshness hid that it had stopped.
        raw.gaps.add(no_data(req.model.name, name, f"the query returned {len(live)} series, not one: aggregate it "
                             "(e.g. sum(...) or sum by (model) (...))", req.window, query=query,
                             labels=[s.labels for s in live[:5]]), f"{name}: {len(live)} series")
        return None
    series = live[0]
    known = req.known_series
    volume = None
    if known is not None and volume_query:
        volume = _volume(sources, req, name, volume_query, start, series, raw.gaps)
    history = volume_history = None
    missed = False
    keys = (anomaly_key(name, series, query, volume_query), legacy_anomaly_key(name, series))
    if known is not None and not any(k in known for k in keys):
        if series.partial or f"{name} volume" in raw.gaps.partial:
            # No state is stored from a partial window (detect), so a day of history now would
            # be a day-long query a cycle, for the whole outage, for nothing: asked once whole.
            return MetricSignal(name, query, series, None, volume, None, volume_query, True)
        since = req.window.t - ANOMALY_WARMUP_S
        history, missed = _history(sources, req, name, query, since, series, keys[0])
        if volume is not None and volume_query:
            volume_history = _volume(sources, req, name, volume_query, since, series)
    return MetricSignal(name, query, series, history, volume, volume_history, volume_query, missed)


def _history(sources: Sources, req: GatherRequest, name: str, query: str, since: float, series: Series,
             key: str) -> tuple[Series | None, bool]:
    """A day of `series` for its first sight, and whether it is to be asked again next
    cycle: a state learnt from the window alone is blind for hours (150 points to warm
    up) and, once stored, no history is ever read for it, so a Prometheus that could not
    answer (a timeout in a heavy first sweep), or answered without a store (a partial
    answer: a band learnt from part of the day), is asked again, `HISTORY_TRIES` cycles at
    most; a query it rejects is learnt from the window."""
    miss_key = (req.model.name, key)
    try:
        found = sources.prometheus.query_range(query, since, req.window.t, name=name)
        why = f"{PARTIAL_WORDS}: {note}" if (note := partial_of(found)) else ""
    except QueryError:
        return None, False
    except SourceUnavailable as e:
        why = str(e)
    if why:
        misses = sources.history_misses[miss_key] = sources.history_misses.get(miss_key, 0) + 1
        log.warning("anomaly warm-up history unavailable", extra={"model": req.model.name, "signal": name,
                                                                  "reason": why, "attempt": misses})
        if misses >= HISTORY_TRIES:
            sources.history_misses.pop(miss_key, None)
            return None, False
        return None, True
    sources.history_misses.pop(miss_key, None)
    return next((h for h in found if h.labels == series.labels), None), False


_volume_warned: dict[tuple[str, str], str] = {}  # (model, signal) -> the failure last logged


def _volume(sources: Sources, req: GatherRequest, name: str, query: str, start: float, series: Series,
            gaps: Gaps | None = None) -> Series | None:
    """The requests behind `series` from `start` to the cycle time, or None. A volume only
    scales the anomaly band, it is no signal of its own: a query that fails or matches no
    single series leaves the band unscaled (as without a volume) and is logged, once per
    model, signal and reason, rather than reported as missing data, which would open an
    incident and hold every other one open. Read from a partial answer (the window's read:
    `gaps`), it is marked, found or not: it scales the band the signal is judged by, and a
    store down may hold all of it, so the cycle is no all clear."""
    key = (req.model.name, name)
    try:
        found = sources.prometheus.query_range(query, start, req.window.t, name=f"{name} volume")
        hit = _volume_of(found, series)
        if gaps is not None and (note := partial_of(found)):
            gaps.read_partially(f"{name} volume", note)
        why = "" if hit is not None else f"it matched {len(found)} series, not one with the ratio's labels"
    except (SourceUnavailable, QueryError) as e:
        hit, why = None, str(e)
    if not why:
        _volume_warned.pop(key, None)
    elif _volume_warned.get(key) != why:
        _volume_warned[key] = why
        log.warning("volume query unusable: the anomaly band of this signal is not scaled",
                    extra={"model": req.model.name, "signal": name, "reason": why})
    return hit


def _volume_of(found: list[Series], series: Series) -> Series | None:
    """The volume with the ratio's labels (metric names aside: a recording rule's name
    differs), else the only one there is."""
    def labels(s: Series) -> dict[str, str]:
        return {k: v for k, v in s.labels.items() if k != "__name__"}
    found = [f for f in found if not f.empty]
    return next((f for f in found if labels(f) == labels(series)), found[0] if len(found) == 1 else None)


def gather_kpis(sources: Sources, req: GatherRequest, raw: RawSignals) -> None:
    for k in req.model.kpis:
        if sig := _metric(sources, req, raw, k.name, k.query, req.window.baseline_start, k.volume_query, True):
            raw.kpis.append(sig)


def gather_slos(sources: Sources, req: GatherRequest, raw: RawSignals) -> None:
    # An error ratio or a latency quantile is 0/0 (NaN) at night as a KPI is: idle, not a
    # stopped series. NaN breaks a breach run (detectors/runs.py), so idle cycles are no
    # breach and never extend an SLO's consecutive-cycles streak.
    for slo in req.model.slos:
        if sig := _metric(sources, req, raw, slo.name, slo.query, req.window.start, slo.volume_query, True):
            raw.slos.append(sig)


def gpu_queries(selector: str) -> dict[str, str]:
    sel = f"{{{selector}}}" if selector else ""
    return {
        "gpu_util_pct": f"DCGM_FI_DEV_GPU_UTIL{sel}",
        "fb_used_ratio": f"DCGM_FI_DEV_FB_USED{sel} / (DCGM_FI_DEV_FB_USED{sel} + DCGM_FI_DEV_FB_FREE{sel})",
        # vLLM renamed the gauge (still 0..1): current releases emit only kv_cache_usage_perc,
        # older ones only gpu_cache_usage_perc; `or` reads whichever a pod has (once if both).
        "kv_cache_ratio": f"vllm:kv_cache_usage_perc{sel} or vllm:gpu_cache_usage_perc{sel}",
        "requests_waiting": f"vllm:num_requests_waiting{sel}",
    }


def gather_gpu(sources: Sources, req: GatherRequest, raw: RawSignals) -> None:
    if req.model.gpu is None:
        return
    for name, query in gpu_queries(req.model.gpu.selector).items():
        # DCGM utilisation is the one GPU signal every GPU node has; the vLLM ones are optional.
        series = query_range(sources, raw.gaps, req, f"gpu {name}", query, req.window.start,
                             required=name == "gpu_util_pct")
        if series is None:
            if sources.health.is_down("prometheus"):
                return  # each further query would only wait out the same retries
            continue
        raw.gpu[name] = series


def service_metric_entity(name: str) -> str:
    """The entity a root-cause metric's gap is reported under."""
    return f"root-cause metric {name}"


def gather_service_metrics(sources: Sources, req: GatherRequest, raw: RawSignals) -> None:
    """The root-cause metric series over the normal period and the window ([baseline_start,
    t]: one query each, the range the KPIs read, so a sweep's prefetch answers it). A query
    that matches nothing is no error (a per-service error rate has no series while nothing
    fails); one Prometheus rejects or cannot answer is a gap and a line of what the
    diagnosis lacked. A dead Prometheus is asked once, not once per metric."""
    rc = req.root_cause
    if rc is None or not rc.metrics:
        return
    out = raw.service_metrics = ServiceMetricSignals(names=[m.name for m in rc.metrics])
    for i, m in enumerate(rc.metrics):
        if m.metric_class is not None:
            out.meanings[m.name] = m.metric_class
        series = query_range(sources, raw.gaps, req, service_metric_entity(m.name), m.query,
                             req.window.baseline_start, required=False)
        if series is None:
            gap = raw.gaps.findings[-1] if raw.gaps.findings else None
            reason = gap.evidence.get("reason") if gap and gap.entity == service_metric_entity(m.name) else None
            out.unread.append(f"{m.name} ({reason or 'not read'})")
            if sources.health.is_down("prometheus"):
                out.unread += [f"{x.name} (Prometheus unavailable)" for x in rc.metrics[i + 1:]]
                return  # each further query would only wait out the same retries
            continue
        by_service = [relabel(s, m.name, rc.service_label) for s in series]
        kept = [s for s in by_service if s is not None]
        if series and not kept:
            raw.gaps.add(no_data(req.model.name, service_metric_entity(m.name),
                                 f"no series has the label {rc.service_label!r} (root_cause.service_label)",
                                 req.window, query=m.query), f"{m.name}: no series labelled {rc.service_label}")
            out.unread.append(f"{m.name} (no series labelled {rc.service_label!r})")
        out.series += kept


def relabel(s: Series, name: str, label: str) -> Series | None:
    """A root-cause series named by its config name, its service in the `service` label
    (the detectors' key); None when the series lacks `label`."""
    service = s.labels.get(label)
    if not service:
        return None
    labels = {k: v for k, v in s.labels.items() if k != "__name__"}
    labels["service"] = service
    return Series(name, labels, s.timestamps, s.values)


def gather_logs_traces(sources: Sources, req: GatherRequest, raw: RawSignals) -> None:
    pull_logs_traces(sources.logs_traces, sources.health, req.model, req.window, raw, req.log_baseline,
                     req.can_fall_back)


def gather_samples(sources: Sources, req: GatherRequest, raw: RawSignals) -> None:
    """Production samples of the window and the reference they are judged against."""
    m, w = req.model, req.window
    if not m.features and not m.prediction_column:
        return
    unreadable: list[str] = []
    try:
        raw.version_samples = sources.samples.window(m, w.start, w.t, unreadable=unreadable)
    except SampleFileError as e:
        raw.gaps.add(no_data(m.name, "samples", str(e), w), f"samples: {e}")
        return
    if unreadable:  # (a parquet still being written, a damaged file): named, the rest still judged
        why = "; ".join(unreadable[:3]) + (f" (and {len(unreadable) - 3} more)" if len(unreadable) > 3 else "")
        raw.gaps.add(no_data(m.name, "samples", f"{why}; the window is judged without it", w), f"samples: {why}")
    raw.samples = own_rows(m, raw.version_samples, req.serving)  # the champion is judged on its own rows
    if len(raw.samples) == 0:
        if len(raw.version_samples) == 0 and (idle := served_nothing(raw)):
            raw.gaps.blind.append(f"samples: none in the window, and none expected: {idle}")
        elif len(raw.version_samples) == 0:
            raw.gaps.add(no_data(m.name, "samples", "no feature samples in the window", w), "samples: none in window")
        else:
            why = f"no feature samples of the serving version v{req.serving} in the window"
            raw.gaps.add(no_data(m.name, "samples", why, w), f"samples: {why}")
        return
    try:
        raw.reference, raw.reference_path = sources.references.choose(m, req.serving, w)
    except (SampleFileError, OSError, ValueError) as e:
        raw.gaps.add(no_data(m.name, "training reference", str(e), w), f"reference: {e}")


def served_nothing(raw: RawSignals) -> str:
    """Why no feature samples were to be expected ("" when they were): the model's KPIs and
    SLOs all read 0/0 throughout the window, so nobody called it (an idle night), and a
    window without samples is no broken pipeline. A KPI or SLO with a real point in the
    window, or a model with none to ask, leaves the missing samples a no-data finding."""
    if not raw.gaps.idle or raw.kpis or raw.slos:
        return ""
    whole = [n for n in raw.gaps.idle if n not in raw.gaps.partial]
    partly = [n for n in raw.gaps.idle if n in raw.gaps.partial]
    said = [f"{', '.join(whole)} served no request (0/0 throughout the window)"] if whole else []
    if partly:  # its store down may hold every request: no page on it, and no claim either
        said.append(f"{', '.join(partly)} read 0/0 from a partial answer (a store that did not answer "
                    "may hold its requests)")
    return "; ".join(said)
