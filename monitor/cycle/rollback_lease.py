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
go when the last one ends. Held by another process that is not a daemon (a `vigil rollback`, a
second `vigil serve`, in the middle of a move; they write their role into the lock file, a daemon
none), there is no daemon to leave it to: the drive waits for it (at most one move's budget) and
goes on; still held then, the intent stays pending and the answer names the holder (`NotADaemon`).
"""
from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from monitor.cycle.model_locks import CycleRunning, ModelLocks
from monitor.replicas.fence import LeaseLost
from monitor.replicas.single_daemon import AnotherDaemonRunning, DaemonLock, single_daemon_lock, sqlite_file
from monitor.store.repository import Store

T = TypeVar("T")
HOLDER_WAIT_S = 30.0  # how long a drive waits for a non-daemon holder's move: one move's step budget
POLL_S = 0.2
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


class NotADaemon(CycleRunning):
    """Another process that is not a daemon (`role`) held the SQLite store past the wait: nothing
    moves the rollback on its own."""

    def __init__(self, model: str, held: AnotherDaemonRunning, waited_s: float) -> None:
        holder = (f"{held.role} (pid {held.pid}), not a daemon" if held.role else
                  "a process that wrote no pid into it (a daemon writes its own)")
        super().__init__(model, f"the store's single-daemon lock is held by {holder}, still after {waited_s:.0f} s: "
                                "no daemon moves it; start `vigil run` on this store (its start-up moves it), or "
                                "cancel it and ask again")


def drive_unless_daemon(store_url: str, model: str, drive: Callable[[], T], role: str,
                        wait_s: float = HOLDER_WAIT_S) -> T:
    """`drive()` holding the store's single-daemon lock (on a SQLite file), so a daemon starting
    meanwhile is refused; `DaemonRunning` at once when a daemon holds it (its cycles may drive the
    same intent); held by a process that is not one, waits up to `wait_s` for it, then `NotADaemon`.
    Elsewhere (in-memory SQLite) as it is. `role`: what a refused daemon is told holds it."""
    key = _take_waiting(store_url, model, role, wait_s)
    try:
        return drive()
    finally:
        _let_go(key)


def _take_waiting(store_url: str, model: str, role: str, wait_s: float) -> str:
    """`_take`, polled while the holder is not a daemon (a role in the lock file, or no line yet: one
    just taking it writes its line next) for at most `wait_s`."""
    end = time.monotonic() + wait_s
    while True:
        try:
            return _take(store_url, role)
        except AnotherDaemonRunning as e:
            if e.holder and not e.role:  # a daemon, which never lets go: its cycles move it
                raise DaemonRunning(model, e.holder) from None
            if time.monotonic() >= end:
                raise NotADaemon(model, e, wait_s) from None
        time.sleep(POLL_S)


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

    def __init__(self, store_url: str, role: str, wait_s: float = HOLDER_WAIT_S) -> None:
        self.store_url, self.role, self.wait_s = store_url, role, wait_s

    def check(self, session: Any, model: str, token: int) -> None:
        return None  # no leases on SQLite: the lock held around the drive is the fence

    def drive(self, model: str, drive: Callable[[], T]) -> T:
        return drive_unless_daemon(self.store_url, model, drive, self.role, self.wait_s)
