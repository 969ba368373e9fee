"""A few threads the app owns, for work done after the HTTP answer (Slack button presses).

Bounded twice: `workers` threads run jobs, and at most `max_pending` jobs wait or run, so
a flood of presses is refused at the door (the caller says "busy") instead of queueing
without end. The threads are made on the first job, so an app that never gets one costs
nothing; `close` lets running jobs finish for a while and drops the ones not started.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait

log = logging.getLogger("vigil.api")


class BoundedWorker:
    def __init__(self, name: str, *, workers: int = 2, max_pending: int = 32) -> None:
        self.name = name
        self._workers = workers
        self._slots = threading.BoundedSemaphore(max_pending)
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._futures: set[Future[None]] = set()
        self._on_drop: dict[Future[None], Callable[[], None]] = {}
        self._closed = False

    def submit(self, job: Callable[[], None], label: str, on_drop: Callable[[], None] | None = None) -> bool:
        """False when full or closed: the job was not taken. `on_drop` runs if the job is
        dropped at `close` before it started (whoever was promised its result is told)."""
        if not self._slots.acquire(blocking=False):
            log.warning("%s: busy, refused %s", self.name, label)
            return False
        with self._lock:
            if self._closed:
                self._slots.release()
                return False
            if self._executor is None:
                self._executor = ThreadPoolExecutor(self._workers, thread_name_prefix=self.name)
            future = self._executor.submit(self._run, job, label)
            self._futures.add(future)
            if on_drop is not None:
                self._on_drop[future] = on_drop
        future.add_done_callback(self._done)
        return True

    def _run(self, job: Callable[[], None], label: str) -> None:
        try:
            job()
        except Exception:  # a job's failure is logged; the thread goes on to the next one
            log.exception("%s: %s failed", self.name, label)

    def _done(self, future: Future[None]) -> None:
        with self._lock:
            self._futures.discard(future)
            drop = self._on_drop.pop(future, None) if future.cancelled() else None
            self._on_drop.pop(future, None)
        self._slots.release()
        if drop is not None:
            try:
                drop()
            except Exception:  # telling is best effort; the stop goes on
                log.exception("%s: telling about a dropped job failed", self.name)

    def wait_idle(self, timeout: float) -> bool:
        """True once every job taken so far has finished (tests, and a clean stop)."""
        with self._lock:
            pending = set(self._futures)
        return not wait(pending, timeout=timeout).not_done

    def close(self, timeout: float) -> int:
        """Stop taking jobs, give running ones `timeout`; the number not finished."""
        with self._lock:
            self._closed = True
            executor, pending = self._executor, set(self._futures)
        if executor is None:
            return 0
        executor.shutdown(wait=False, cancel_futures=True)
        unfinished = len(wait(pending, timeout=timeout).not_done)
        if unfinished:
            log.warning("%s: %d job(s) still running or never started at shutdown", self.name, unfinished)
        return unfinished
