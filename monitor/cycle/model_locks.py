"""One lock per model: whatever writes a model's layers in this process does it one at a time.

A cycle holds its model's lock from its reconcile to its actions. A rollback asked outside a
cycle (the API, a Slack button) drives its intent only under the same lock: with a cycle of the
model running, the two drivers could both read a layer at the old version and both write it (a
second KServe patch, a second deploy webhook call). The asked drive waits at most `wait_s`
for it, then leaves the intent, recorded and pending, to the cycle (`CycleRunning`). Reentrant:
a rollback a cycle asks for itself (the guard's, a canary's) drives on the cycle's thread.

A sweep handed to worker processes holds the locks of its models until their chunk is done.
The terminal's `vigil rollback` and `vigil serve`, other processes, are not seen here: on SQLite they
ask the store's single-daemon lock instead (monitor/cycle/rollback_lease.py `drive_unless_daemon`).
"""
from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Iterator

ASKED_WAIT_S = 1.0  # how long an asked rollback waits for the model's running cycle before answering pending


class CycleRunning(Exception):
    """A cycle of `model` holds its lock: an asked rollback leaves its intent to it; `who` says whose."""

    def __init__(self, model: str, who: str = "") -> None:
        self.model = model
        self.who = who or f"a cycle of {model} is running on this replica: it or the next cycle moves it"
        super().__init__(self.who)


class Held:
    """The cycle locks a sweep holds on this thread for its worker processes, by model."""

    def __init__(self) -> None:
        self._locks: dict[str, threading.RLock] = {}

    def take(self, model: str, lock: threading.RLock) -> None:
        lock.acquire()
        self._locks[model] = lock

    def models(self) -> list[str]:
        return list(self._locks)

    def release(self, models: Iterable[str]) -> None:
        """Hand back `models`' locks (their cycles are done); one not held (or given back) is skipped."""
        for model in models:
            lock = self._locks.pop(model, None)
            if lock is not None:
                lock.release()


class ModelLocks:
    def __init__(self, models: Iterable[str], wait_s: float = ASKED_WAIT_S) -> None:
        self._locks = {name: threading.RLock() for name in models}
        self._guard = threading.Lock()
        self.wait_s = wait_s

    def _lock(self, model: str) -> threading.RLock:
        with self._guard:  # a model not in the configuration this was built with: its lock, made once
            return self._locks.setdefault(model, threading.RLock())

    @contextlib.contextmanager
    def cycle(self, model: str) -> Iterator[None]:
        """Held for one cycle of `model`: waits for whatever holds it."""
        with self._lock(model):
            yield

    @contextlib.contextmanager
    def cycles(self, models: Iterable[str]) -> Iterator[Held]:
        """Held while `models`' cycles run elsewhere for this process (a sweep's worker processes);
        `Held.release` hands back those of a part that is done, the rest go on leaving the block."""
        held = Held()
        try:
            for model in sorted(set(models)):
                held.take(model, self._lock(model))
            yield held
        finally:
            held.release(held.models())

    @contextlib.contextmanager
    def asked(self, model: str) -> Iterator[None]:
        """Held for an asked rollback's drive; `CycleRunning` when a cycle keeps it past `wait_s`."""
        lock = self._lock(model)
        if not lock.acquire(timeout=self.wait_s):
            raise CycleRunning(model)
        try:
            yield
        finally:
            lock.release()
