"""Fencing: a write of a model's cycle commits only under the model's current lease.

The lead calls `fence.check(session, model, token)` first thing in every transaction of
a model's cycle. It reads the lease row in that transaction and, on PostgreSQL, holds it
FOR SHARE until the transaction ends: a takeover is an UPDATE of that row, so it waits
until this transaction has committed or rolled back, and every write made under the old
token lands before the new owner's first read. A replica that was paused past its lease
(GC stall, stopped VM, network partition) finds another owner or token here, raises
`LeaseLost`, and its transaction rolls back.
"""
from __future__ import annotations

from typing import Protocol

from sqlalchemy.orm import Session

from monitor.store.leases import lease_state


class LeaseLost(Exception):
    """This replica no longer holds the model's lease under this token; the write is refused."""

    def __init__(self, model: str, token: int, current_owner: str | None, *, current_token: int | None = None,
                 expired: bool = False) -> None:
        self.model = model
        self.token = token
        self.current_owner = current_owner
        self.current_token = current_token
        self.expired = expired
        now = "expired" if expired else f"held by {current_owner or 'nobody'} under token {current_token}"
        super().__init__(f"lease on model {model!r} lost: token {token} is no longer current (the lease is {now}); "
                         "the write was refused and its transaction rolls back")


class FenceCheck(Protocol):
    """What the cycle calls: the real fence with leases, or the no-op one in single-process mode."""

    def check(self, session: Session, model: str, token: int) -> None: ...


class Fence:
    """The fence of one replica (`owner` is its replica id)."""

    def __init__(self, owner: str) -> None:
        self.owner = owner

    def check(self, session: Session, model: str, token: int) -> None:
        """Raise `LeaseLost` unless `owner` holds `model`'s unexpired lease under `token`
        (judged by the database's clock), and keep it held until `session` commits."""
        state = lease_state(session, model, lock=True)
        if state is None:
            raise LeaseLost(model, token, None)
        if state.owner != self.owner or state.token != token:
            raise LeaseLost(model, token, state.owner, current_token=state.token)
        if not state.valid:
            raise LeaseLost(model, token, state.owner, current_token=state.token, expired=True)


class NoFence:
    """Single-process mode (SQLite, one daemon guarded by `single_daemon_lock`): nothing to fence."""

    def check(self, session: Session, model: str, token: int) -> None:
        return None
