"""Stage 3, correlate: this cycle's findings, and the open incident's whole story, as
incidents with ranked causes. Pure: the deploys come in as data."""
from __future__ import annotations

from correlators.causes import CorrelationSettings, build_incident, merge_findings
from correlators.incident import Cause
from correlators.rca import rank_root_causes
from detectors.records import DeployEvent
from monitor.cycle.plan import CycleStart
from monitor.types import Correlation, Detection, ServiceEvidence, Window

MAX_SERVICE_CAUSES = 5  # the full ranking is in the RCA; an incident shows the top of it


def story_start(w: Window, start: CycleStart) -> float:
    """Where the incident's story begins: its opening, or this window for a new one."""
    return min(w.start, start.opened_at) if start.opened_at is not None else w.start


def rank_services(evidence: ServiceEvidence | None, candidates: list[str], t: float) -> list[Cause]:
    """The model's services (and those the traces showed) ranked from log and trace findings."""
    if evidence is None:
        return []
    causes = rank_root_causes(metric_findings=[], log_findings=evidence.log_findings,
                              trace_findings=evidence.trace_findings, topology=evidence.graph, alert_time=t,
                              candidates=candidates, observed=evidence.observed)
    return causes[:MAX_SERVICE_CAUSES]


def correlate(model: str, found: Detection, candidates: list[str], start: CycleStart, deploys: list[DeployEvent],
              w: Window, settings: CorrelationSettings) -> Correlation:
    """`candidates` are the model's services, ranked even without findings of their own."""
    services = rank_services(found.services, candidates, w.t)
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
