"""Who drives a rollback a person asked for: only a process that may write the model's layers.

A cycle drives its model's rollbacks under its fencing token (monitor/replicas/fence.py). A
rollback asked through the API (`POST /v1/models/{name}/rollback`, a Slack button) was driven
in the API's thread, outside any fence: on a replica that does not hold the model's lease it
moved the alias and patched the serving layer, beside the lease holder's own cycle driving the
same intent. Now such a drive runs under the same fence as the cycle when this replica holds the
model's lease, and is left to the holder's next cycle when it does not (or loses the lease on
the way): the intent is recorded, pending, and the answer says who moves it. Either way it
drives only under the model's cycle lock (monitor/cycle/model_locks.py): never beside this
process's own cycle of the model, which reconciles the same intent.

The terminal's `vigil rollback` and `vigil serve` on SQLite are other processes, whose cycle
locks the daemon never sees: they drive only holding the store's single-daemon lock
(`drive_unless_daemon`, `BesideDaemon`), so no daemon starts mid-drive, and beside a running
daemon leave the intent to its next cycle. The lock is a `flock`, held by an open file: a
second open of it in the same process is refused as if a daemon held it. So a process takes
it once, shared by its drives of different models (`vigil serve`'s request threads), and lets
go when the last one ends.
"""
from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from monitor.cycle.model_locks import CycleRunning, ModelLocks
from monitor.replicas.fence import LeaseLost
from monitor.replicas.single_daemon import AnotherDaemonRunning, DaemonLock, single_daemon_lock, sqlite_file
from monitor.store.repository import Store

T = TypeVar("T")
LeaseToken = Callable[[str], "int | None"]  # a model's fencing token while this replica holds its lease


def drive_here(store: Store, fence: Any, token_of: LeaseToken | None, model: str, drive: Callable[[], T],
               locks: ModelLocks | None = None) -> T | None:
    """`drive()` where this process may write `model`'s layers, else None: inside a fenced cycle
    as it is; one daemon alone on its store (no fence) as it is; a replica among others only
    under its lease on the model (each transaction and each write checks it), None without it.
    Outside a cycle, under `locks`' lock of the model: `CycleRunning` while a cycle keeps it."""
    if store.fencing_token() is not None:  # the cycle's own ask: it holds the model's lock
        return drive()
    with locks.asked(model) if locks is not None else contextlib.nullcontext():
        return _drive_leased(store, fence, token_of, model, drive)


def _drive_leased(store: Store, fence: Any, token_of: LeaseToken | None, model: str, drive: Callable[[], T]
                  ) -> T | None:
    if fence is None:
        return drive()
    if isinstance(fence, BesideDaemon):
        return fence.drive(model, drive)
    token = token_of(model) if token_of is not None else None
    if token is None:
        return None
    try:
        with store.fenced(fence, model, token):
            return drive()
    except LeaseLost:  # lost on the way: the intent stays pending for the new holder's cycle
        return None


class DaemonRunning(CycleRunning):
    """A daemon holds the SQLite store (`vigil run`): a `vigil rollback` or `vigil serve` ask is left to it."""

    def __init__(self, model: str, holder: str | None) -> None:
        super().__init__(model, f"the daemon (pid {holder or 'unknown'}) running on this store moves it at its "
                                "next cycle")


def drive_unless_daemon(store_url: str, model: str, drive: Callable[[], T], role: str) -> T:
    """`drive()` holding the store's single-daemon lock (on a SQLite file), so a daemon starting
    meanwhile is refused; `DaemonRunning` when a daemon holds it (its cycles may drive the same
    intent). Elsewhere (in-memory SQLite) as it is. `role`: what a refused daemon is told holds it."""
    try:
        key = _take(store_url, role)
    except AnotherDaemonRunning as e:
        raise DaemonRunning(model, e.holder) from None
    try:
        return drive()
    finally:
        _let_go(key)


class _Shared:
    def __init__(self, lock: DaemonLock) -> None:
        self.lock, self.users = lock, 0


_process_guard = threading.Lock()  # one open of each store's lock file per process, shared by its threads
_process_holds: dict[str, _Shared] = {}


def _take(store_url: str, role: str) -> str:
    """Hold the store's single-daemon lock for one more user in this process (taken by the first);
    `AnotherDaemonRunning` when another process holds it. Returns the key to `_let_go`."""
    key = str(sqlite_file(store_url))
    with _process_guard:
        shared = _process_holds.get(key)
        if shared is None:
            shared = _process_holds[key] = _Shared(single_daemon_lock(store_url, role=role))
        shared.users += 1
    return key


def _let_go(key: str) -> None:
    """One user fewer; the last one releases the lock."""
    with _process_guard:
        shared = _process_holds[key]
        shared.users -= 1
        if not shared.users:
            del _process_holds[key]
            shared.lock.release()


class BesideDaemon:
    """The fence of a process beside a SQLite store's daemon (`vigil serve`): an asked rollback
    drives holding the store's single-daemon lock, or is left to the daemon holding it."""

    def __init__(self, store_url: str, role: str) -> None:
        self.store_url, self.role = store_url, role

    def check(self, session: Any, model: str, token: int) -> None:
        return None  # no leases on SQLite: the lock held around the drive is the fence

    def drive(self, model: str, drive: Callable[[], T]) -> T:
        return drive_unless_daemon(self.store_url, model, drive, self.role)
