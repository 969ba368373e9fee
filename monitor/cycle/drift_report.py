"""Evidently's own drift report for an incident, rendered once on a bounded sample and
stored for GET /v1/incidents/{id}/drift-report. It is for people: its failure must
never cost the alert.

Rendering takes seconds (about 14 s for 50 features), so in a sweep (`background`) it
runs on a worker thread of its own, one report at a time, never inside a model's cycle;
a report asked for again while it is queued or rendering is not queued twice. A cycle
run alone (tests, replay, the API) renders it before returning, as before.
"""
from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor, wait

from detectors.drift import render_drift_report
from monitor.config import ModelConfig
from monitor.cycle.reference import ReferenceChooser
from monitor.cycle.samples import SampleReader
from monitor.sources.samples import read_reference
from monitor.store.repository import Store

log = logging.getLogger("vigil.drift_report")
REPORT_ROWS = 2000
MAX_QUEUED = 100  # reports waiting to render; more are dropped with a warning (rendered on the next cycle)


class DriftReports:
    def __init__(self, store: Store, samples: SampleReader, references: ReferenceChooser, lookback: float) -> None:
        self.store, self.samples, self.references, self.lookback = store, samples, references, lookback
        self.background = False
        self._pool: ThreadPoolExecutor | None = None
        self._pending: dict[int, Future[None]] = {}
        self._lock = threading.Lock()

    def save_once(self, m: ModelConfig, incident_id: int, columns: list[str], serving: str | None, t: float) -> None:
        if not self.background:
            self._render(m, incident_id, columns, serving, t)
            return
        with self._lock:
            if incident_id in self._pending:
                return
            if len(self._pending) >= MAX_QUEUED:
                log.warning("drift report queue full, report left for a later cycle",
                            extra={"model": m.name, "incident": incident_id})
                return
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vigil-drift-report")
            fut = self._pool.submit(self._render, m, incident_id, columns, serving, t)
            self._pending[incident_id] = fut
        fut.add_done_callback(lambda _f: self._done(incident_id))

    def _done(self, incident_id: int) -> None:
        with self._lock:
            self._pending.pop(incident_id, None)

    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for queued reports; True when none is left."""
        with self._lock:
            futures = list(self._pending.values())
        _, not_done = wait(futures, timeout=timeout)
        return not not_done

    def _render(self, m: ModelConfig, incident_id: int, columns: list[str], serving: str | None, t: float) -> None:
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
