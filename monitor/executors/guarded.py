"""An executor as a rollback sees it: whatever goes wrong inside is an `ExecutorError`.

An executor turns the failures it knows into ExecutorError; anything else (a bug, a
client library raising an exception of its own) escaped the rollback, left its intent
pending for ever, failed every cycle of the model and blocked any other rollback. Such
an error is now a retryable ExecutorError: the call may or may not have acted, so the
next attempt reads the layer again (compare-and-set) and verifies rather than assume
nothing moved, and the intent fails, audited, once its attempts are used up.

It also bounds the time: past the step's deadline (RollbackRunner.step_budget_s after the
rollback's work in this cycle began) a layer is not called again; the intent stays
pending, its verified layers recorded, and resumes at the next cycle. A webhook's
retries (max_attempts x timeout_s + waits per call, several calls per rollback) held a
model's cycle, or a person's request, for minutes.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from functools import partial
from typing import Any, TypeVar

from monitor.executors.base import BEFORE_WRITE, STEP_DEADLINE, Executor, ExecutorError, RollbackStep, Verification

log = logging.getLogger("vigil.rollback")
T = TypeVar("T")


# The store's transaction for a step: entered, it checks the lease and that the step's intent is pending.
Fenced = Callable[[RollbackStep], AbstractContextManager[Any]]


class _WriteRefused(Exception):
    """What the lease check raised, carried through `Guarded` unchanged (a lost lease is the
    cycle's to handle, not a failed attempt at the layer)."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


class Guarded:
    """`inner`, with any exception other than ExecutorError turned into a retryable one,
    and not called past `deadline` (time.monotonic(); None: no bound). `fenced` opens a
    transaction of the store, which in a replica's cycle first checks its lease on the model,
    and the step's intent: the inner executor has it checked right before each write
    (base.before_write)."""

    def __init__(self, inner: Executor, deadline: float | None = None, fenced: Fenced | None = None) -> None:
        self.inner, self.name, self.deadline, self.fenced = inner, inner.name, deadline, fenced

    def _check_before_write(self, step: RollbackStep) -> None:
        if self.fenced is None:
            return
        try:
            with self.fenced(step):  # LeaseLost on entry when a replica paused past its lease
                pass
        except Exception as e:
            raise _WriteRefused(e) from e

    def current(self, step: RollbackStep) -> str | None:
        return self._call("read", step, lambda: self.inner.current(step))

    def apply(self, step: RollbackStep) -> None:
        self._call("move", step, lambda: self.inner.apply(step))

    def verify(self, step: RollbackStep) -> Verification:  # Argo's read-back may write (promoteFull)
        return self._call("verify", step, lambda: self.inner.verify(step))

    def _call(self, verb: str, step: RollbackStep, fn: Callable[[], T]) -> T:
        if self.deadline is not None and time.monotonic() >= self.deadline:
            raise ExecutorError(True, f"{self.name}: not asked to {verb}: the time for this round of rollback "
                                      "steps is used up", reason="deadline", unmoved=True)
        running, checking = STEP_DEADLINE.set(self.deadline), BEFORE_WRITE.set(partial(self._check_before_write, step))
        try:
            return fn()
        except ExecutorError:
            raise
        except _WriteRefused as refused:
            raise refused.error from None
        except Exception as e:  # a bug or a library's own exception: whether it acted is unknown
            log.exception("rollback layer raised an unexpected error", extra={"layer": self.name, "verb": verb})
            raise ExecutorError(True, f"{self.name}: unexpected {type(e).__name__} on {verb}: {e} (whether it "
                                      "acted is unknown: it is read back before any retry)",
                                reason="unexpected", unmoved=verb == "read") from e
        finally:
            STEP_DEADLINE.reset(running)
            BEFORE_WRITE.reset(checking)


def guarded(layers: list[Executor], deadline: float | None = None, fenced: Fenced | None = None) -> list[Executor]:
    return [Guarded(x.inner if isinstance(x, Guarded) else x, deadline, fenced) for x in layers]


def preflight(layers: list[Executor]) -> None:
    """ExecutorError (reason "config") when a layer could not act at all, e.g. a webhook
    secret that cannot be read: found before the alias moves, not after it."""
    for x in layers:
        check = getattr(x.inner if isinstance(x, Guarded) else x, "preflight", None)
        if check is not None:
            check()
