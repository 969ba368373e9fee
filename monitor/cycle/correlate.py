"""Stage 3, correlate: this cycle's findings, and the open incident's whole story, as
incidents with ranked causes. Pure: the deploys come in as data."""
from __future__ import annotations

from collections.abc import Sequence

from correlators.causes import CorrelationSettings, build_incident, merge_findings
from correlators.coverage import lacking_from_observed
from correlators.incident import Cause
from correlators.services import ServiceSignals
from correlators.services import rank_services as shared_rank_services
from detectors.records import DeployEvent, Finding, FindingKind
from detectors.traces import ServiceGraph
from monitor.cycle.plan import CycleStart
from monitor.types import Correlation, Detection, ServiceEvidence, Window

MAX_SERVICE_CAUSES = 5  # the full ranking is in the RCA; an incident shows the top of it


def story_start(w: Window, start: CycleStart) -> float:
    """Where the incident's story begins: its opening, or this window for a new one."""
    return min(w.start, start.opened_at) if start.opened_at is not None else w.start


def rank_services(evidence: ServiceEvidence | None, candidates: list[str], t: float,
                  findings: Sequence[Finding] = ()) -> list[Cause]:
    """The model's services (and those the traces and root-cause metrics showed) ranked
    from log, trace and per-service metric evidence by the function the RCA benchmarks
    measure (correlators.services.rank_services, benchmarks/rca_suite.py), with the same
    default parameters, and the same call graph: the traces' joined with the one given
    (`root_cause.call_graph`). What the diagnosis lacked (a modality no service had, root-cause
    metrics that could not be read or had no normal period) is on every cause. Nothing is
    ranked when no service shows anything: a list of zero scores would name a cause."""
    metric = [f for f in findings if f.kind is FindingKind.METRIC_ANOMALY and f.service]
    if evidence is None and not metric:
        return []
    if evidence is not None and not (metric or evidence.log_findings or evidence.trace_findings
                                     or (evidence.metrics and evidence.metrics.findings)):
        return []
    observed = evidence.observed if evidence else {}
    signals = ServiceSignals(
        metrics=evidence.metrics if evidence else None, metric_findings=metric,
        log_findings=evidence.log_findings if evidence else [],
        trace_findings=evidence.trace_findings if evidence else [],
        graph=evidence.graph if evidence else ServiceGraph(),
        given_graph=evidence.given_graph if evidence else ServiceGraph(), observed=observed, candidates=candidates,
        lacking=[*lacking_from_observed(observed), *(evidence.lacking if evidence else ())])
    return shared_rank_services(signals, t)[:MAX_SERVICE_CAUSES]


def correlate(model: str, found: Detection, candidates: list[str], start: CycleStart, deploys: list[DeployEvent],
              w: Window, settings: CorrelationSettings) -> Correlation:
    """`candidates` are the model's services, ranked even without findings of their own."""
    services = rank_services(found.services, candidates, w.t, found.findings)
    incident = build_incident(model, found.findings, deploys, window_start=w.start, window_end=w.t,
                              settings=settings, extra_causes=services)
    if incident is None or not start.earlier_findings:
        return Correlation(incident, incident)
    # The whole story: earlier findings merged with this cycle's, correlated again, so
    # causes are ranked on everything seen, not one window.
    moves = [d.at for d in deploys if d.model == model]  # a signal back after one is a new episode
    merged = merge_findings(start.earlier_findings, incident.findings, moves, settings.onset_slack)
    content = build_incident(model, merged, deploys, window_start=story_start(w, start), window_end=w.t,
                             settings=settings, extra_causes=services)
    return Correlation(incident, content)
