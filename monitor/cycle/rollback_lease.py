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

The terminal's `vigil rollback` on SQLite is another process, whose cycle lock the daemon never
sees: it drives only holding the store's single-daemon lock (`drive_unless_daemon`), so no
daemon starts mid-drive, and beside a running daemon leaves the intent to its next cycle.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, TypeVar

from monitor.cycle.model_locks import CycleRunning, ModelLocks
from monitor.replicas.fence import LeaseLost
from monitor.replicas.single_daemon import AnotherDaemonRunning, single_daemon_lock
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
    token = token_of(model) if token_of is not None else None
    if token is None:
        return None
    try:
        with store.fenced(fence, model, token):
            return drive()
    except LeaseLost:  # lost on the way: the intent stays pending for the new holder's cycle
        return None


class DaemonRunning(CycleRunning):
    """A daemon holds the SQLite store (`vigil run`): a terminal's rollback leaves its intent to it."""

    def __init__(self, model: str, holder: str | None) -> None:
        super().__init__(model, f"the daemon (pid {holder or 'unknown'}) running on this store moves it at its "
                                "next cycle")


def drive_unless_daemon(store_url: str, model: str, drive: Callable[[], T]) -> T:
    """`drive()` holding the store's single-daemon lock (on a SQLite file), so a daemon starting
    meanwhile is refused; `DaemonRunning` when a daemon holds it (its cycles may drive the same
    intent). Elsewhere (in-memory SQLite) as it is."""
    try:
        lock = single_daemon_lock(store_url, role="a `vigil rollback` moving layers")
    except AnotherDaemonRunning as e:
        raise DaemonRunning(model, e.holder) from None
    with lock:
        return drive()
