"""Guarded rollback: move the registry alias back, audited before and after.

The executor is idempotent: if the alias already points at the target it records a
no-op instead of moving anything, so a retried API call or a replayed cycle cannot
flip a model twice.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol


class AliasRegistry(Protocol):
    def alias_version(self, name: str, alias: str) -> str | None: ...

    def set_alias(self, name: str, alias: str, version: str) -> None: ...


class ActionStatus(StrEnum):
    """The outcome of an action (a rollback), as stored, audited and shown."""

    DONE = "done"
    DRY_RUN = "dry_run"
    NOOP = "noop"  # already there: nothing moved
    REFUSED = "refused"  # a guard said no; the reason says which
    FAILED = "failed"


AuditFn = Callable[[str, dict[str, Any]], Any]  # (action, detail) -> entry


@dataclass
class RollbackOutcome:
    status: ActionStatus
    from_version: str | None
    to_version: str
    detail: str = ""


def execute_rollback(
    registry: AliasRegistry,
    *,
    registry_name: str,
    alias: str,
    to_version: str,
    dry_run: bool,
    reason: str,
    audit: AuditFn,
) -> RollbackOutcome:
    base = {"registry_name": registry_name, "alias": alias, "to_version": to_version, "reason": reason,
            "dry_run": dry_run}
    try:
        current = registry.alias_version(registry_name, alias)
    except Exception as e:  # the registry is down: say so, never pretend it worked
        audit("rollback.failed", {**base, "error": f"cannot read alias: {e}"})
        return RollbackOutcome(ActionStatus.FAILED, None, to_version, f"cannot read alias '{alias}': {e}")
    if current == to_version:
        audit("rollback.noop", {**base, "from_version": current})
        return RollbackOutcome(ActionStatus.NOOP, current, to_version, f"'{alias}' already points at v{to_version}")
    audit("rollback.requested", {**base, "from_version": current})
    if dry_run:
        audit("rollback.dry_run", {**base, "from_version": current})
        return RollbackOutcome(ActionStatus.DRY_RUN, current, to_version,
                               f"dry run: would move '{alias}' from v{current} to v{to_version}")
    try:
        registry.set_alias(registry_name, alias, to_version)
    except Exception as e:
        audit("rollback.failed", {**base, "from_version": current, "error": str(e)})
        return RollbackOutcome(ActionStatus.FAILED, current, to_version, f"moving '{alias}' failed: {e}")
    audit("rollback.done", {**base, "from_version": current})
    return RollbackOutcome(ActionStatus.DONE, current, to_version, f"moved '{alias}' from v{current} to v{to_version}")
