"""The daemon's runtime: the current Vigil (a reload swaps it) and which one the running
jobs use: a reload's replaced source clients (Loki, Tempo,
Prometheus) are closed once the last job on the old Vigil is done, never under it.

Without it each SIGHUP left the old clients' keep-alive connections open until Python's
cycle collector happened by: sockets piled up with reloads.
"""
from __future__ import annotations

import contextlib
import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from monitor.cycle.deploys import registry_source
from monitor.cycle.removed import sweep_removed
from monitor.ownership import Ownership
from monitor.schedule_watch import ScheduleWatch
from monitor.shutdown import InFlight
from monitor.vigil import Vigil


class Stoppable(Protocol):  # the outbox sender's thread (monitor/daemon.py OutboxThread)
    def stop(self) -> None: ...

log = logging.getLogger("vigil.daemon")


def replaced_clients(old: Vigil, new: Vigil) -> list[Any]:
    """`old`'s source clients that `new` does not share (a changed section built new ones)."""
    lt, nlt = old.gather_sources.logs_traces, new.gather_sources.logs_traces
    pairs = [(lt.loki, nlt.loki), (lt.tempo, nlt.tempo), (old.prometheus, new.prometheus)]
    return [was for was, now in pairs if was is not None and was is not now and callable(getattr(was, "close", None))]


def _close(clients: list[Any]) -> None:
    for client in clients:
        try:
            client.close()
        except Exception:  # a client that cannot close cleanly holds a socket, nothing more
            log.exception("closing a replaced source client failed")


class VigilUsers:
    """Counts the jobs (cycles, sweeps, probes) running on each Vigil."""

    def __init__(self) -> None:
        self.lock = threading.Lock()  # also held by the swap: a job gets the old Vigil (counted) or the new
        self._users: Counter[int] = Counter()
        self._retired: dict[int, list[Any]] = {}

    @contextlib.contextmanager
    def using(self, current: Callable[[], Vigil]) -> Iterator[Vigil]:
        """The current Vigil, counted as used until the block ends."""
        with self.lock:
            vigil = current()
            self._users[id(vigil)] += 1
        try:
            yield vigil
        finally:
            due: list[Any] = []
            with self.lock:
                self._users[id(vigil)] -= 1
                if self._users[id(vigil)] <= 0:
                    del self._users[id(vigil)]
                    due = self._retired.pop(id(vigil), [])
            _close(due)

    def others_in_use(self, current: Vigil) -> bool:
        """Whether a job still runs on a Vigil other than `current` (a replaced one)."""
        with self.lock:
            return any(n > 0 for vid, n in self._users.items() if vid != id(current))

    def retire(self, old: Vigil, clients: list[Any]) -> None:
        """Close `clients` once no job uses `old` any more: now, if none does."""
        with self.lock:
            if self._users[id(old)] > 0:
                self._retired.setdefault(id(old), []).extend(clients)
                return
            del self._users[id(old)]
        _close(clients)


class Cycling:
    """The models whose cycle runs now, across jobs. The scheduler's one-instance rule holds
    per job, and a reload that removes a model and one that adds it back give it a new job
    (or switching `schedule.sweep` moves it into the sweep's): without this its new cycle ran
    beside the old one, both writing the same incident and messages."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: set[str] = set()

    @contextlib.contextmanager
    def claim(self, models: list[str]) -> Iterator[list[str]]:
        """Those of `models` not being cycled now, held as running until the block ends."""
        with self._lock:
            mine = [m for m in models if m not in self._running]
            self._running.update(mine)
        skipped = len(models) - len(mine)
        if skipped:
            log.warning("cycle skipped: the model's previous cycle still runs",
                        extra={"models": sorted(set(models) - set(mine))[:10], "skipped": skipped})
        try:
            yield mine
        finally:
            with self._lock:
                self._running.difference_update(mine)


class Runtime:
    """What the scheduler's jobs and the API reach through: the current Vigil (a reload
    swaps it between cycles) and the jobs running now."""

    def __init__(self, vigil: Vigil, config_path: str | None) -> None:
        self.vigil, self.config_path = vigil, config_path
        self.in_flight = InFlight()
        self.app: Any = None
        self.owner = Ownership()
        self.watch: ScheduleWatch | None = None
        self.sender: Stoppable | None = None
        self.users = VigilUsers()
        self.cycling = Cycling()
        self.removed_left = False  # an incident of a removed model left for a later lease tick
        self._removed_lock = threading.Lock()  # a lease tick's sweep and a reload's never interleave

    @contextlib.contextmanager
    def current(self) -> Iterator[Vigil]:
        """The current Vigil, for a job (cycle, sweep, probe) that holds it until it ends."""
        with self.users.using(lambda: self.vigil) as vigil:
            yield vigil
        if self.removed_left and vigil is not self.vigil:  # the last job on a replaced one may be done
            self.sweep_removed()

    def sweep_removed(self) -> None:
        """Resolve the open incidents of models no longer configured (start-up, an applied
        reload, then each lease tick while one is left). Not while a job still runs on a
        replaced configuration: a cycle of a removed model could write after the resolve."""
        with self._removed_lock:
            vigil = self.vigil
            if self.users.others_in_use(vigil):
                self.removed_left = True
                return
            self.removed_left = sweep_removed(vigil, self.owner.replica_id)

    def forget_model(self, model: str) -> None:
        """A model this replica no longer holds (its lease released or lost): its gauges go
        (VigilMetrics.forget_model), and so does its `registry:<model>` entry, which only its
        poller marks; kept, /readyz and VigilSourceDown said "down" here until a restart."""
        vigil = self.vigil  # the current one: a reload carries the metrics and the health over
        vigil.metrics.forget_model(model)
        vigil.health.forget(registry_source(model))

    def swap(self, vigil: Vigil) -> None:
        vigil.fence, vigil.lease_token = self.vigil.fence, self.vigil.lease_token
        vigil.model_locks = self.vigil.model_locks  # a cycle still on the old one holds its model's
        with self.users.lock:
            old, self.vigil = self.vigil, vigil
        self.users.retire(old, replaced_clients(old, vigil))  # once a cycle still on `old` is done
        if self.app is not None:
            self.app.state.vigil = vigil
        try:
            old.close()  # its sweep workers stop once a sweep still running on it is done
        except Exception:  # the new configuration runs all the same
            log.exception("closing the replaced configuration's workers failed")
