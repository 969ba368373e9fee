"""Evidently's own drift report for an incident, rendered once on a bounded sample and
stored for GET /v1/incidents/{id}/drift-report. It is for people: its failure must
never cost the alert.

Rendering takes seconds (about 14 s of CPU for 50 features), so in a sweep (`background`)
it runs on a worker thread of its own, one report at a time, never inside a model's
cycle, and not while a sweep runs (`sweeping`): a report waits for the sweep to end (at
most MAX_HOLD_S, so back-to-back sweeps do not starve it), the cycles never share a
core with a report. (A lower CPU priority for the thread was tried: a thread that holds
the GIL at nice 19 on busy cores kept every other thread of the process waiting about
0.2 s for each hand-over of the GIL, so the daemon's API and outbox would stall.) A report
asked for again while it is queued or rendering is not queued twice. A cycle run alone
(tests, replay, the API) renders it before returning, as before.

In a sweep worker process (monitor/sweep_pool.py) a report is not rendered but
`forwarded`: the chunk hands it to the daemon, which renders it. A worker's core is
for cycles, and the reports are not all on one worker (the drifting models may be).
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from html import escape as html_escape

from detectors.drift import render_drift_report
from monitor.config import ModelConfig, PolicyConfig
from monitor.cycle.reference import ReferenceChooser
from monitor.cycle.samples import SampleReader, own_rows
from monitor.store.repository import Store
from monitor.types import Window

log = logging.getLogger("vigil.drift_report")
REPORT_ROWS = 2000
MAX_QUEUED = 100  # reports waiting to render; more are dropped with a warning (rendered on the next cycle)
MAX_HOLD_S = 600.0  # a report waits at most this long for the sweeps to leave a gap


@dataclass(frozen=True)
class ReportAsk:
    """A report a sweep worker's cycle asked for, for the daemon to render."""

    model: str
    incident_id: int
    columns: list[str]
    serving: str | None
    t: float


class DriftReports:
    def __init__(self, store: Store, samples: SampleReader, references: ReferenceChooser, lookback: float,
                 policy_for: Callable[[ModelConfig], PolicyConfig] | None = None) -> None:
        self.store, self.samples, self.references, self.lookback = store, samples, references, lookback
        self.policy_for = policy_for  # the page judges as the verdict did (statistic, threshold)
        self.background = False
        self.forwarded: list[ReportAsk] | None = None  # set in a sweep worker: asks go to the daemon
        self._pool: ThreadPoolExecutor | None = None
        self._pending: dict[int, Future[None]] = {}
        self._lock = threading.Lock()
        self._sweeps = 0
        self._idle = threading.Event()
        self._idle.set()
        self._closed = False

    @contextmanager
    def sweeping(self) -> Iterator[None]:
        """While a sweep runs, no report starts rendering (one already rendering finishes)."""
        with self._lock:
            self._sweeps += 1
            self._idle.clear()
        try:
            yield
        finally:
            with self._lock:
                self._sweeps -= 1
                if self._sweeps == 0:
                    self._idle.set()

    def save_once(self, m: ModelConfig, incident_id: int, columns: list[str], serving: str | None, t: float) -> None:
        if self.forwarded is not None:
            with self._lock:
                self.forwarded.append(ReportAsk(m.name, incident_id, list(columns), serving, t))
            return
        if not self.background:
            self._render(m, incident_id, columns, serving, t)
            return
        with self._lock:
            if self._closed or incident_id in self._pending:
                return
            if len(self._pending) >= MAX_QUEUED:
                log.warning("drift report queue full, report left for a later cycle",
                            extra={"model": m.name, "incident": incident_id})
                return
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vigil-drift-report")
            fut = self._pool.submit(self._render_between_sweeps, m, incident_id, columns, serving, t)
            self._pending[incident_id] = fut
        fut.add_done_callback(lambda _f: self._done(incident_id))

    def close(self) -> None:
        """Drop the queued reports (a stopping daemon would otherwise wait minutes for them
        at exit; the next cycle of an open drift incident asks again); one already
        rendering finishes."""
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
            self._idle.set()
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def take_forwarded(self) -> list[ReportAsk]:
        """The reports asked for since the last take (a sweep worker's chunk hands them on)."""
        with self._lock:
            if self.forwarded is None:
                return []
            asks, self.forwarded = self.forwarded, []
        return asks

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

    def _render_between_sweeps(self, m: ModelConfig, incident_id: int, columns: list[str], serving: str | None,
                               t: float) -> None:
        if not self._idle.wait(timeout=MAX_HOLD_S):
            log.info("drift report rendered during a sweep: no gap between sweeps",
                     extra={"model": m.name, "incident": incident_id, "waited_s": MAX_HOLD_S})
        if not self._closed:
            self._render(m, incident_id, columns, serving, t)

    def _render(self, m: ModelConfig, incident_id: int, columns: list[str], serving: str | None, t: float) -> None:
        if self.store.has_drift_report(incident_id):
            return
        try:
            current = own_rows(m, self.samples.window(m, t - self.lookback, t), serving)  # as the verdict judged
            # The reference the verdict used (the rolling one, when it did), not always the
            # training file: the page must not show drift the alert's reference had accepted.
            start = t - self.lookback
            reference = self.references.reference_frame(
                m, serving, Window(t=t, start=start, baseline_start=start, baseline_end=start))
        except Exception:  # the report is for people; its failure must not cost the alert
            log.exception("drift report failed: its data could not be read", extra={"model": m.name,
                                                                                    "incident": incident_id})
            return  # (a file or the store may be back next cycle, which asks again)
        cols = [c for c in columns if c in current.columns and c in reference.columns]
        began = time.perf_counter()
        # The feature types the verdict used: an integer-coded category (zone ids) is not
        # a number, and Evidently would otherwise judge it with a numeric test.
        categorical = [f.name for f in m.features if f.type == "categorical"]
        p = self.policy_for(m) if self.policy_for is not None else None
        try:
            html = render_drift_report(reference, current, cols, max_rows=REPORT_ROWS, seed=0, categorical=categorical,
                                       statistic=p.drift_statistic if p else None,
                                       threshold=p.drift_warning if p else None)
        except Exception as e:
            # Evidently refused these rows. Nothing stored, the link said "not rendered yet, try
            # again in a minute" for good, and each cycle of the open incident paid for another
            # failing render: the page says why instead, once.
            log.exception("drift report failed", extra={"model": m.name, "incident": incident_id})
            if len(current) == 0 or len(reference) == 0:
                return  # no rows to show yet: asked again next cycle
            html = _failure_page(m.name, incident_id, e)
        try:
            self.store.save_drift_report(incident_id, html, t)
        except Exception:
            log.exception("drift report not stored", extra={"model": m.name, "incident": incident_id})
            return
        log.info("drift report rendered", extra={"model": m.name, "incident": incident_id,
                                                 "seconds": round(time.perf_counter() - began, 2)})


def _failure_page(model: str, incident_id: int, error: Exception) -> str:
    """What the incident's report link shows when Evidently could not render its data."""
    why = html_escape(f"{type(error).__name__}: {error}"[:2000])
    return ("<!doctype html><html><head><meta charset=\"utf-8\"><title>Drift report unavailable</title></head>"
            f"<body><h1>Evidently could not render the drift report of incident {incident_id} "
            f"({html_escape(model)})</h1><p>{why}</p><p>Vigil's drift verdict does not depend on this page: "
            "the incident's findings carry every statistic next to its threshold.</p></body></html>")
