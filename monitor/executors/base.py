"""The executor contract: what one rollback intent asks of a serving layer.

The caller reads `current()`, and calls `apply()` only while the layer still serves
`from_version` (or does nothing when it already serves `to_version`), so a restart never
reverses somebody else's later change. Executors add their own guard where the layer
offers one (Kubernetes `resourceVersion`; MLflow offers none: its alias is read again
right before the write), and `apply` is idempotent: a second call after a success
changes nothing.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Protocol

from tenacity import RetryCallState
from tenacity.stop import stop_base

from monitor.redact import redact

# The running step's deadline (time.monotonic(); None: unbounded), set by `Guarded` around
# each call: an executor that retries (webhook, the KubeClient several share) stops
# retrying there, and the rollback resumes at the next cycle.
STEP_DEADLINE: ContextVar[float | None] = ContextVar("vigil_step_deadline", default=None)

# The running step's last check before its layer is written (set by `Guarded` around each
# call, bound to the call's step; None: nothing to check): the replica's lease on the model
# (on PostgreSQL) and the step's intent, still pending in the store. The layer's own reads
# and retries before the write (MLflow's version tags: 3 calls of up to timeout_s each; a
# Kubernetes read, a ReplicaSet list, a Retry-After wait; a webhook's backoff) can outlast the
# lease checked when the layer's turn came: a replica paused past it there must not write once
# it resumes, nor one whose intent a person cancelled (or Vigil abandoned) meanwhile, since
# "nothing moved" must stay true.
BEFORE_WRITE: ContextVar[Callable[[], None] | None] = ContextVar("vigil_before_write", default=None)


def before_write() -> None:
    """Called by an executor's transport right before each attempt at a call that changes its
    layer (KubeClient.patch, the webhook's POST, an MLflow alias set or delete); raises when
    the write must not be made: the lease lost (the cycle's to handle), or an ExecutorError,
    unmoved, when the step's intent is no longer pending."""
    check = BEFORE_WRITE.get()
    if check is not None:
        check()


@dataclass(frozen=True)
class RollbackStep:
    """What one intent asks of an executor: serve `to_version` instead of `from_version`."""

    model: str  # Vigil's name for the model (config `models[].name`)
    registry_name: str  # its name in the model registry
    from_version: str | None  # what the layer served when the intent was recorded (None: unknown)
    to_version: str
    key: str  # the intent's idempotency key: the same key is the same request
    incident_id: int | None = None  # the incident that asked for it (None: asked by a person without one)
    requested_at: float | None = None  # when the intent was recorded (Unix s); None: the executor's clock


@dataclass(frozen=True)
class Verification:
    """What a read-back found. `ok` means the layer is set to serve `to_version` and nothing
    it reports contradicts that; `settled` is False while the layer's controller has not
    yet reported on the change (verify again later to see it take effect)."""

    ok: bool
    serving: str | None  # the version the layer says it serves (None: unknown)
    detail: str
    settled: bool = True


SETTLING = "settling"  # ExecutorError.reason: set to the target, its controller still rolling it out


class ExecutorError(Exception):
    """An executor could not act or read. `retryable` says whether the same call may succeed
    later (network, 5xx, conflict) or needs a person (404, 403, bad config); `reason` is a
    short code (not_found, forbidden, conflict, changed, unavailable, rejected, invalid,
    config; settling: the layer is set to the target and its controller is still rolling it
    out) and `detail` names the resource and what was expected. `unmoved`: raised before any
    call that could change the layer (a read, a refusal), so the attempt cannot have moved
    it; False (the default) when it may have: a write whose answer was lost."""

    def __init__(self, retryable: bool, detail: str, *, reason: str = "failed", unmoved: bool = False) -> None:
        # Redacted once here: the detail reaches the audit log, Slack, the API and /readyz.
        self.retryable, self.detail, self.reason, self.unmoved = retryable, redact(detail), reason, unmoved
        super().__init__(self.detail)


class Executor(Protocol):
    """One serving layer that a rollback can move. `name` identifies it in records."""

    name: str

    def current(self, step: RollbackStep) -> str | None:
        """The version this layer serves now (None: unknown or absent)."""
        ...

    def apply(self, step: RollbackStep) -> None:
        """Make the layer serve `step.to_version`; a no-op when it already does."""
        ...

    def verify(self, step: RollbackStep) -> Verification:
        """Read back what the layer serves and compare it with `step.to_version`."""
        ...


def request_timeout(timeout_s: float, deadline: float | None) -> float:
    """One request's timeout: `timeout_s`, cut to what is left before `deadline` (at least a
    short try, so a late call still says why)."""
    return timeout_s if deadline is None else max(0.5, min(timeout_s, deadline - time.monotonic()))


class PastDeadline(stop_base):
    """Stop retrying when the next attempt would start past `deadline` (time.monotonic())."""

    def __init__(self, deadline: float | None) -> None:
        self.deadline = deadline

    def __call__(self, state: RetryCallState) -> bool:
        return self.deadline is not None and time.monotonic() + (state.upcoming_sleep or 0.0) >= self.deadline
