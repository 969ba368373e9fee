"""Evidently's own drift report for an incident, rendered once on a bounded sample and
stored for GET /v1/incidents/{id}/drift-report. It is for people: its failure must
never cost the alert."""
from __future__ import annotations

import logging

from detectors.drift import render_drift_report
from monitor.config import ModelConfig
from monitor.cycle.reference import ReferenceChooser
from monitor.cycle.samples import SampleReader
from monitor.sources.samples import read_reference
from monitor.store.repository import Store

log = logging.getLogger("vigil.drift_report")
REPORT_ROWS = 2000


class DriftReports:
    def __init__(self, store: Store, samples: SampleReader, references: ReferenceChooser, lookback: float) -> None:
        self.store, self.samples, self.references, self.lookback = store, samples, references, lookback

    def save_once(self, m: ModelConfig, incident_id: int, columns: list[str], serving: str | None, t: float) -> None:
        if self.store.has_drift_report(incident_id):
            return
        try:
            current = self.samples.window(m, t - self.lookback, t)
            reference = read_reference(self.references.training_path(m, serving))
            cols = [c for c in columns if c in current.columns and c in reference.columns]
            html = render_drift_report(reference, current, cols, max_rows=REPORT_ROWS, seed=0)
            self.store.save_drift_report(incident_id, html, t)
        except Exception:  # the report is for people; its failure must not cost the alert
            log.exception("drift report failed", extra={"model": m.name, "incident": incident_id})
