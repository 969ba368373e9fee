"""An executor as a rollback sees it: whatever goes wrong inside is an `ExecutorError`.

An executor turns the failures it knows into ExecutorError; anything else (a bug, a
client library raising an exception of its own) escaped the rollback, left its intent
pending for ever, failed every cycle of the model and blocked any other rollback. Such
an error is now a retryable ExecutorError: the call may or may not have acted, so the
next attempt reads the layer again (compare-and-set) and verifies rather than assume
nothing moved, and the intent fails, audited, once its attempts are used up.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from monitor.executors.base import Executor, ExecutorError, RollbackStep, Verification

log = logging.getLogger("vigil.rollback")
T = TypeVar("T")


class Guarded:
    """`inner`, with any exception other than ExecutorError turned into a retryable one."""

    def __init__(self, inner: Executor) -> None:
        self.inner, self.name = inner, inner.name

    def current(self, step: RollbackStep) -> str | None:
        return self._call("read", lambda: self.inner.current(step))

    def apply(self, step: RollbackStep) -> None:
        self._call("move", lambda: self.inner.apply(step))

    def verify(self, step: RollbackStep) -> Verification:
        return self._call("verify", lambda: self.inner.verify(step))

    def _call(self, verb: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except ExecutorError:
            raise
        except Exception as e:  # a bug or a library's own exception: whether it acted is unknown
            log.exception("rollback layer raised an unexpected error", extra={"layer": self.name, "verb": verb})
            raise ExecutorError(True, f"{self.name}: unexpected {type(e).__name__} on {verb}: {e} (whether it "
                                      "acted is unknown: it is read back before any retry)",
                                reason="unexpected") from e


def guarded(layers: list[Executor]) -> list[Executor]:
    return [x if isinstance(x, Guarded) else Guarded(x) for x in layers]
