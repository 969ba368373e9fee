"""Stage 3, correlate: this cycle's findings, and the open incident's whole story, as
incidents with ranked causes. Pure: the deploys come in as data."""
from __future__ import annotations

from collections.abc import Sequence

from correlators.causes import CorrelationSettings, build_incident, merge_findings
from correlators.coverage import lacking_from_observed
from correlators.incident import Cause
from correlators.rca import RcaContext, rank_root_causes
from detectors.records import DeployEvent, Finding, FindingKind
from monitor.cycle.plan import CycleStart
from monitor.types import Correlation, Detection, ServiceEvidence, Window

MAX_SERVICE_CAUSES = 5  # the full ranking is in the RCA; an incident shows the top of it


def story_start(w: Window, start: CycleStart) -> float:
    """Where the incident's story begins: its opening, or this window for a new one."""
    return min(w.start, start.opened_at) if start.opened_at is not None else w.start


def rank_services(evidence: ServiceEvidence | None, candidates: list[str], t: float,
                  findings: Sequence[Finding] = ()) -> list[Cause]:
    """The model's services (and those the traces showed) ranked from log, trace and
    per-service metric findings, with the ranking the RCA benchmarks measure
    (benchmarks/rca_suite.py): same function, same default parameters. What the
    diagnosis lacked (a modality no service had) is on every cause."""
    metric = [f for f in findings if f.kind is FindingKind.METRIC_ANOMALY and f.service]
    if evidence is None and not metric:
        return []
    observed = evidence.observed if evidence else {}
    causes = rank_root_causes(metric_findings=metric, log_findings=evidence.log_findings if evidence else [],
                              trace_findings=evidence.trace_findings if evidence else [],
                              topology=evidence.graph if evidence else None, alert_time=t,
                              context=RcaContext(candidates=candidates, observed=observed or None,
                                                 lacking=lacking_from_observed(observed)))
    return causes[:MAX_SERVICE_CAUSES]


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
    content = build_incident(model, merge_findings(start.earlier_findings, incident.findings), deploys,
                             window_start=story_start(w, start), window_end=w.t, settings=settings,
                             extra_causes=services)
    return Correlation(incident, content)
