"""Cycles that could not run on time are reported, never silently dropped.

APScheduler drops a run that waited longer than `schedule.misfire_grace` for a free
worker (EVENT_JOB_MISSED) and skips one whose previous run is still going
(EVENT_JOB_MAX_INSTANCES). Each is counted (`vigil_cycles_missed_total{reason}`), logged
with the model and how late it was, and `/readyz` says "degraded" (the `schedule` entry)
until a whole interval passes without a miss. Each run's lag behind its scheduled time
is `vigil_cycle_lag_seconds` (the latest), so a scheduler falling behind shows before it
drops anything. No per-model label: the cardinality stays bounded at any fleet size.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, EVENT_JOB_SUBMITTED, JobEvent
from prometheus_client import Counter, Gauge

log = logging.getLogger("vigil.schedule")
SCHEDULE = "schedule"  # its entry among /readyz's sources


class ScheduleWatch:
    def __init__(self, registry: Any, interval: float, mark: Any) -> None:
        """`mark(up, detail)`: how readiness hears of it (SourceHealth.mark for "schedule")."""
        self.missed = Counter("vigil_cycles_missed_total", "Scheduled cycles or sweeps that did not run on time",
                              ["reason"], registry=registry)
        for reason in ("late", "busy"):
            self.missed.labels(reason)
        self.lag = Gauge("vigil_cycle_lag_seconds", "How late the latest cycle or sweep started after its "
                         "scheduled time", registry=registry)
        self.interval = interval
        self._mark = mark
        self._lock = threading.Lock()
        self._last_miss: float | None = None
        self._scheduled: dict[str, float] = {}  # job id -> its latest scheduled run time

    def listen(self, scheduler: Any) -> None:
        scheduler.add_listener(self.on_event, EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES | EVENT_JOB_SUBMITTED)

    def on_event(self, event: JobEvent) -> None:
        when = getattr(event, "scheduled_run_time", None)
        if when is None:
            times = getattr(event, "scheduled_run_times", None) or []
            when = times[-1] if times else None
        at = when.timestamp() if when is not None else time.time()
        if event.code == EVENT_JOB_SUBMITTED:
            with self._lock:
                self._scheduled[event.job_id] = at
            return
        if not (event.job_id.startswith("cycle:") or event.job_id == "sweep"):
            return
        reason = "late" if event.code == EVENT_JOB_MISSED else "busy"
        self.report_miss(event.job_id, reason, time.time() - at)

    def report_miss(self, job: str, reason: str, lag: float) -> None:
        self.missed.labels(reason).inc()
        with self._lock:
            self._last_miss = time.time()
        what = "the previous run is still going" if reason == "busy" else "no worker was free in time"
        log.warning("scheduled run missed", extra={"job": job, "reason": reason, "lag_s": round(lag, 1),
                                                   "why": what})
        self._mark(False, f"{job}: a run did not start on time ({what}), {lag:.0f} s late")

    def started(self, job: str) -> float:
        """A run begins: its lag behind schedule (also exported); clears the degraded state
        once an interval has passed without a miss."""
        with self._lock:
            scheduled = self._scheduled.get(job)
            last_miss = self._last_miss
        lag = max(0.0, time.time() - scheduled) if scheduled is not None else 0.0
        self.lag.set(lag)
        if last_miss is None or time.time() - last_miss > self.interval:
            self._mark(True, f"on time (lag {lag:.1f} s)")
        return lag
