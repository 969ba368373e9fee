"""Stage 3, correlate: this cycle's findings, and the open incident's whole story, as
incidents with ranked causes. Pure: the deploys come in as data."""
from __future__ import annotations

from correlators.causes import CorrelationSettings, build_incident, merge_findings
from correlators.incident import Cause
from detectors.records import DeployEvent, Finding
from monitor.cycle.plan import CycleStart
from monitor.types import Correlation, Window


def story_start(w: Window, start: CycleStart) -> float:
    """Where the incident's story begins: its opening, or this window for a new one."""
    return min(w.start, start.opened_at) if start.opened_at is not None else w.start


def correlate(model: str, findings: list[Finding], service_causes: list[Cause], start: CycleStart,
              deploys: list[DeployEvent], w: Window, settings: CorrelationSettings) -> Correlation:
    incident = build_incident(model, findings, deploys, window_start=w.start, window_end=w.t, settings=settings,
                              extra_causes=service_causes)
    if incident is None or not start.earlier_findings:
        return Correlation(incident, incident)
    # The whole story: earlier findings merged with this cycle's, correlated again, so
    # causes are ranked on everything seen, not one window.
    content = build_incident(model, merge_findings(start.earlier_findings, incident.findings), deploys,
                             window_start=story_start(w, start), window_end=w.t, settings=settings,
                             extra_causes=service_causes)
    return Correlation(incident, content)
