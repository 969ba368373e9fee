"""Stopping the daemon in order: signals in, running work waited for within a grace, then out.

SIGTERM and SIGINT ask for a stop: no new cycle starts, the running ones finish, the outbox
is drained, and the process exits 0, all within `schedule.shutdown_grace`; past it, or on a
second signal, it exits `EXIT_ABANDONED` naming what it left unfinished (a cycle cut short
commits nothing: its writes are one transaction). SIGHUP asks for a configuration reload.

A group kill delivers one stop twice: coreutils `timeout` (and `kill -- -PGID`) signals the
child, then its whole process group. The same signal again within `DUPLICATE_S` of the first
is that one stop, not a second: counted, `timeout N vigil run` skipped the outbox drain and
exited 3, or, landing after the handlers were put back, killed the process that had just
stopped cleanly.
"""
from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

log = logging.getLogger("vigil.daemon")
EXIT_ABANDONED = 3  # stopped with work unfinished (see the log line naming it)
DUPLICATE_S = 1.0  # the same stop signal again this soon is one delivery repeated (a group kill)


class InFlight:
    """The scheduler's jobs running now, by name; closed, it refuses new ones, so a job
    that starts after a stop was asked for never runs."""

    def __init__(self) -> None:
        self._running: Counter[str] = Counter()
        self._closed = False
        self._cond = threading.Condition()

    @contextlib.contextmanager
    def track(self, name: str) -> Iterator[bool]:
        """Yields False (run nothing) once closed."""
        with self._cond:
            if self._closed:
                admitted = False
            else:
                admitted = True
                self._running[name] += 1
        try:
            yield admitted
        finally:
            if admitted:
                with self._cond:
                    self._running[name] -= 1
                    if self._running[name] <= 0:
                        del self._running[name]
                    self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True

    def wait_idle(self, deadline: float, force: threading.Event) -> list[str]:
        """Wait (monotonic `deadline`, or until `force`) for the running jobs; what is left."""
        with self._cond:
            while self._running and not force.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(min(left, 0.1))
            return sorted(self._running)


class StopSignals:
    """SIGTERM/SIGINT set `stop` (a second one also sets `force`, unless it is the same signal
    within `DUPLICATE_S`: one stop delivered twice, or two Ctrl+C within a second); SIGHUP sets `reload`.

    Python only lets the main thread install handlers: a daemon embedded in another thread
    (tests, a host application) is stopped through `stop` alone."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop, self.force, self.reload = stop, threading.Event(), threading.Event()
        self._previous: dict[int, Any] = {}
        self._first: tuple[int, float] | None = None  # the first stop signal, and when (monotonic)

    def install(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._previous[sig] = signal.signal(sig, self._on_stop)
            self._previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, lambda *_: self.reload.set())
        return self

    def _on_stop(self, sig: int, _frame: Any) -> None:
        now = time.monotonic()
        first = self._first
        if first is not None and first[0] == sig and now - first[1] < DUPLICATE_S:
            return  # the same stop delivered again (to the process, then to its group)
        if self.stop.is_set():
            self.force.set()  # asked twice: stop waiting (Ctrl+C twice)
        if first is None:
            self._first = (sig, now)
        self.stop.set()

    def restore(self) -> None:
        if self._first is not None:  # a repeat still on its way must meet this handler, not the default's kill
            time.sleep(max(self._first[1] + DUPLICATE_S - time.monotonic(), 0.0))
        for sig, handler in self._previous.items():
            if handler is not None:  # None: installed outside Python, cannot be put back
                signal.signal(sig, handler)


def run_bounded(name: str, work: Callable[[], Any], deadline: float) -> bool:
    """Run `work` on a daemon thread and wait for it until `deadline`; True when it finished.
    A notifier stuck on a dead network must not hold the process past its grace."""
    done = threading.Event()

    def target() -> None:
        try:
            work()
        finally:
            done.set()

    threading.Thread(target=target, name=name, daemon=True).start()
    return done.wait(max(deadline - time.monotonic(), 0.0))
