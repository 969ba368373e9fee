"""The records one cycle passes from stage to stage (monitor/cycle/), at the bottom of
monitor/ so every stage can import them and none imports another stage for a type."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from correlators.incident import Incident
from detectors.canary import CanaryVerdict
from detectors.records import PARTIAL_WORDS, DeployEvent, Finding, FindingKind, LogRecord, Series, Span
from detectors.service_metrics import ServiceMetricsReport
from detectors.traces import ServiceGraph


@dataclass(frozen=True)
class Window:
    """The time a cycle looks at: [start, t], and the baseline before it."""

    t: float  # cycle time
    start: float  # t - lookback
    baseline_start: float
    baseline_end: float
    # Where KPI baselines end instead, when a release came into an open incident with nothing of
    # the model's own before it (correlators.causes.released_into): the hour before the release.
    kpi_baseline_end: float | None = None

    def kpi_baseline(self) -> tuple[float, float]:
        """The KPIs' baseline: as long as the others, before the release when there is one.
        Frozen at an incident's onset days before, a release's drop was measured against an old
        normal (the hour of day, all that changed since) and not against what it changed."""
        if self.kpi_baseline_end is None:
            return self.baseline_start, self.baseline_end
        return self.kpi_baseline_end - (self.baseline_end - self.baseline_start), self.kpi_baseline_end


def no_data(model: str, entity: str, why: str, w: Window, **evidence: object) -> Finding:
    """A signal that could not be evaluated: a finding of its own, never an all clear."""
    return Finding(kind=FindingKind.NO_DATA, entity=entity, model=model, value=0.0, threshold=1.0,
                   window_start=w.start, window_end=w.t, onset=w.t, score=0.3, statistic="points",
                   message=f"no data for {entity}: {why}", evidence={"reason": why, **evidence})


@dataclass
class Gaps:
    """What a stage could not see, and why: `no_data` findings plus one line each for people."""

    findings: list[Finding] = field(default_factory=list)
    blind: list[str] = field(default_factory=list)
    # KPIs and SLOs read 0/0 throughout the window: the model served no request (or, those
    # also in `partial`, the store that did not answer may hold its requests)
    idle: list[str] = field(default_factory=list)
    # signal -> why the answer it was read from may be missing data (`Series.partial`): it is
    # judged, but no automatic action is taken on it and it never counts as an all clear
    partial: dict[str, str] = field(default_factory=dict)

    def add(self, finding: Finding, line: str) -> None:
        self.findings.append(finding)
        self.blind.append(line)

    def read_partially(self, entity: str, note: str, nothing: bool = False) -> None:
        """`entity` was read from a partial answer (`nothing`: which held nothing to judge of it)."""
        self.partial[entity] = note
        self.blind.append(f"{entity}: {'nothing to judge, ' if nothing else ''}{PARTIAL_WORDS}: {note}")


@dataclass(frozen=True)
class MetricSignal:
    """One queried KPI/SLO series, with what it takes to fetch more of it."""

    name: str
    query: str
    series: Series
    history: Series | None = None  # a day of it, when the anomaly detector sees it for the first time
    volume: Series | None = None  # the requests behind each value of `series` (`volume_query`)
    volume_history: Series | None = None  # and of `history`
    volume_query: str | None = None  # what `volume` was read with (part of the state's key)
    # a day of history was wanted but Prometheus could not give it: the state learnt from
    # the window alone is not stored, so the next cycle asks for the history again
    history_missed: bool = False


@dataclass
class RawSignals:
    """gather's output: what the sources said for one model and window, nothing judged yet."""

    kpis: list[MetricSignal] = field(default_factory=list)
    slos: list[MetricSignal] = field(default_factory=list)
    gpu: dict[str, list[Series]] = field(default_factory=dict)  # GPU signal name -> series
    samples: pd.DataFrame | None = None  # None: drift not configured for this model; the serving version's rows
    # Every version's rows of the window (the canary compares them by `canary.version_column`);
    # None: the same as `samples`.
    version_samples: pd.DataFrame | None = None
    reference: Any = None  # the drift reference profile chosen for this window
    reference_path: str | None = None
    logs_current: list[LogRecord] = field(default_factory=list)
    logs_baseline: list[LogRecord] = field(default_factory=list)
    spans_current: list[Span] = field(default_factory=list)
    spans_baseline: list[Span] = field(default_factory=list)
    traces_sampled: str = ""  # a lacking line when Tempo had more traces in the window than it returned
    baseline_window: tuple[float, float] | None = None  # read for a log/trace baseline refit, else None
    # "logs"/"traces" whose stored baseline stands in for this cycle's refit -> why (its
    # refresh read failed; the traces baseline the logs pair with is unread)
    baseline_unread: dict[str, str] = field(default_factory=dict)
    service_metrics: ServiceMetricSignals | None = None  # None: no root-cause metrics configured
    call_graph: tuple[tuple[str, str], ...] = ()  # (caller, callee) given in `root_cause.call_graph`
    gaps: Gaps = field(default_factory=Gaps)

    @property
    def all_samples(self) -> pd.DataFrame | None:
        """Every version's rows of the window: the canary's comparison, the sample counts."""
        return self.samples if self.version_samples is None else self.version_samples


@dataclass
class ServiceMetricSignals:
    """The root-cause metric series (`root_cause.metrics`), each named by its config name
    and labelled `service`, over the normal period and the window; and what could not be
    read (one line per metric: the diagnosis says it lacked them)."""

    series: list[Series] = field(default_factory=list)
    meanings: dict[str, str] = field(default_factory=dict)  # metric name -> class given in config
    unread: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)  # the configured metrics, in order


@dataclass(frozen=True)
class ServiceEvidence:
    """What the service ranking (correlators/rca.py) needs from the log and trace detectors."""

    log_findings: list[Finding]
    trace_findings: list[Finding]
    graph: ServiceGraph  # the call graph the spans showed
    observed: dict[str, set[str]]  # service -> modalities that had data for it
    metrics: ServiceMetricsReport | None = None  # the root-cause metric series' report, when read
    lacking: tuple[str, ...] = ()  # what the baselines lacked (logs/traces: none or short; metrics: unread, none)
    given_graph: ServiceGraph = field(default_factory=ServiceGraph)  # `root_cause.call_graph`, joined with `graph`


@dataclass
class Detection:
    """detect's output: findings, and what the shell records from them."""

    findings: list[Finding] = field(default_factory=list)
    slo_breached: dict[str, bool] = field(default_factory=dict)
    detector_state: dict[str, Any] = field(default_factory=dict)  # per-series anomaly state, persisted
    services: ServiceEvidence | None = None  # log and trace evidence per service, for ranking
    kpi_levels: dict[str, tuple[float, float]] = field(default_factory=dict)  # kpi -> (value, baseline)
    drift_statistics: list[tuple[str, str, float]] = field(default_factory=list)  # (feature, statistic, value)
    drift_columns: list[str] = field(default_factory=list)
    blind: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Correlation:
    """correlate's output: `incident` is this cycle's alone (is something wrong now?);
    `content` the open incident's whole story (what is stored, shown and acted on)."""

    incident: Incident | None
    content: Incident | None


@dataclass
class CycleReport:
    model: str
    t: float
    findings: list[Finding]
    incident: Incident | None
    step: str
    severity: str | None
    incident_id: int | None
    deploys: list[DeployEvent] = field(default_factory=list)
    rollback: dict[str, Any] | None = None
    blind: list[str] = field(default_factory=list)
    duration_s: float = 0.0
    canary: CanaryVerdict | None = None  # this cycle's canary verdict table (None: no challenger)
