"""The service ranking as both its callers build it: the daemon's correlate stage and the
RCA benchmarks (benchmarks/rca_nezha.py, rca_suite.py). One function, so what the
benchmarks measure is what the daemon runs.

The inputs are the detectors' outputs: the per-service metric detector's report (its
findings, each service's strongest robust z, what its baselines lacked), the log and
trace findings, the call graph (the traces', joined here with a given one: the same
join for both callers), which modalities had data per service, and what else the
diagnosis lacked.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from correlators.call_graph import merge_graphs
from correlators.incident import Cause
from correlators.rca import RcaContext, RcaParams, rank_root_causes
from detectors.records import Finding
from detectors.traces.graph import ServiceGraph


class MetricReport(Protocol):
    """What the ranking reads of the per-service metric detector's report
    (detectors.service_metrics.ServiceMetricsReport; a correlator runs no detector)."""

    @property
    def findings(self) -> Sequence[Finding]: ...

    @property
    def strength(self) -> Mapping[str, float]: ...

    @property
    def lacking(self) -> Sequence[str]: ...


@dataclass(frozen=True)
class ServiceSignals:
    """What the ranking is given for one diagnosis.

    `metrics`: the per-service metric detector's report (None: no metric series were
    scored); `metric_findings`: other per-service metric findings (the daemon's; the
    report's own findings are always counted); `lacking`: what the diagnosis lacked
    besides the metric baselines (the report's `lacking` is added after it); `graph`: the
    call graph traces showed; `given_graph`: a service map given with the system (the
    daemon's `root_cause.call_graph`, a benchmark folder's `graphs/`), joined with it.
    """

    metrics: MetricReport | None = None
    log_findings: Sequence[Finding] = ()
    trace_findings: Sequence[Finding] = ()
    graph: ServiceGraph = field(default_factory=ServiceGraph)
    observed: Mapping[str, set[str]] | None = None
    candidates: Sequence[str] = ()
    lacking: Sequence[str] = ()
    metric_findings: Sequence[Finding] = ()
    given_graph: ServiceGraph = field(default_factory=ServiceGraph)


def metric_findings(s: ServiceSignals) -> list[Finding]:
    """The report's findings, then any other per-service metric finding (each once: the
    daemon's findings hold the report's too)."""
    own = list(s.metrics.findings) if s.metrics else []
    seen = {_key(f) for f in own}
    return own + [f for f in s.metric_findings if _key(f) not in seen]


def _key(f: Finding) -> tuple[str, str, str, float, float]:
    return str(f.kind), f.entity, f.statistic, f.onset, f.value


DEFAULT_PARAMS = RcaParams()  # the shipped configuration (benchmarks.rca_nezha.CONFIG.rca)


def rank_services(s: ServiceSignals, alert_time: float, params: RcaParams = DEFAULT_PARAMS) -> list[Cause]:
    """Every candidate service ranked, best first (correlators.rca.rank_root_causes)."""
    lacking = [*s.lacking, *(s.metrics.lacking if s.metrics else ())]
    return rank_root_causes(
        metric_findings=metric_findings(s), log_findings=list(s.log_findings),
        trace_findings=list(s.trace_findings), topology=merge_graphs(s.graph, s.given_graph), alert_time=alert_time,
        context=RcaContext(candidates=s.candidates, observed=s.observed or None,
                           strength=s.metrics.strength if s.metrics else None, lacking=lacking),
        params=params)
