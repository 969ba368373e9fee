"""What a rollback may do, decided without I/O: which version to go back to, and what to
do with one layer (registry alias, serving layer) given what it serves now.

The durable part (record the intent, act, verify, record the outcome, reconcile after a
crash) is monitor/cycle/rollback_intents.py; it asks these functions at every step, so
a retry, a restart and a second replica all decide the same way.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

AUTOMATIC = "vigil"  # the actor of Vigil's own actions (a person's is their name)


class ActionStatus(StrEnum):
    """The outcome of an action (a rollback), as stored, audited and shown."""

    PENDING = "pending"  # the intent is recorded; acting, verifying or waiting to retry
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
    # The durable intent this is the state of, and whether this ask recorded it (False: the
    # model had another rollback in flight, so this ask started nothing of its own).
    intent_id: int | None = None
    own: bool = False


# --------------------------------------------------------------------------- the target
@dataclass(frozen=True)
class TargetFacts:
    """What the store knows when a rollback target is chosen."""

    serving: str | None  # the version the alias points at now (as last seen)
    known_good: list[str]  # versions that served cleanly, most recent first
    blamed: dict[str, str]  # version -> why it is blamed (an open or recent incident, an earlier rollback)
    deploy_previous: str | None = None  # the version before the last real deploy
    gone: tuple[str, ...] = ()  # candidates the registry no longer holds (deleted), left out above


@dataclass(frozen=True)
class TargetChoice:
    version: str | None
    reason: str  # why this version, or why none
    forced: bool = False
    # Asked for the version serving, which is blamed: nothing to move, and never a move (if
    # the alias turns out to serve another one, moving to this one would take force).
    stay: bool = False

    def said(self, detail: str, status: str) -> str:
        """An outcome's detail as told: a `stay` noop says the version serving is blamed too.
        Only a noop: refused or failed, another version serves or none could be read."""
        return f"{detail}; {self.reason}; nothing was moved" if self.stay and status == ActionStatus.NOOP else detail


FORCE_NEEDED = "moving to it needs force=true and a reason"  # the API's words; `vigil rollback` says --force


def choose_target(facts: TargetFacts, *, asked: str | None = None, force: bool = False,
                  force_reason: str = "") -> TargetChoice:
    """The version to roll back to.

    Asked for: taken, unless an incident blames it; a blamed version needs `force` and a
    reason, unless it is the one serving (`stay`: a noop, nothing moves). Not asked for:
    the version serving now when it is one of these and not blamed (a second rollback, or
    two people pressing at once, must not go back further); else the most recent version
    that served cleanly, else the version before the last deploy; never one that an open
    or recent incident blames (the alias's previous value after a half-recorded rollback
    is exactly such a version)."""
    if asked is not None:
        why = facts.blamed.get(asked)
        if why is None:
            return TargetChoice(asked, f"v{asked} as asked")
        if force and force_reason.strip():
            return TargetChoice(asked, f"v{asked} forced although blamed ({why}): {force_reason}", forced=True)
        if asked == facts.serving:  # nothing to move: a noop that says the version is blamed
            return TargetChoice(asked, f"v{asked} is serving and is blamed ({why})", stay=True)
        return TargetChoice(None, f"v{asked} is blamed ({why}); {FORCE_NEEDED}")
    candidates = [*facts.known_good, *([facts.deploy_previous] if facts.deploy_previous else [])]
    if facts.serving is not None and facts.serving not in facts.blamed and facts.serving in candidates:
        return TargetChoice(facts.serving, f"v{facts.serving} is already serving and known good")
    for v in candidates:
        if v != facts.serving and v not in facts.blamed:
            source = "last version known good" if v in facts.known_good else "the version before the last deploy"
            return TargetChoice(v, f"v{v}: {source}")
    skipped = ", ".join(f"v{v} ({facts.blamed[v]})" for v in dict.fromkeys(candidates) if v in facts.blamed)
    missing = ", ".join(f"v{v}" for v in facts.gone)
    return TargetChoice(None, "no version known good to roll back to" + (f"; blamed: {skipped}" if skipped else "")
                        + (f"; no longer in the registry: {missing}" if missing else ""))


def blamed_versions(incident_causes: Iterable[tuple[int, list[dict[str, Any]]]],
                    rolled_back_from: Iterable[tuple[int, str]]) -> dict[str, str]:
    """Versions not to roll back to (nor to promote): the best-ranked deploy suspect of each
    open or recent incident, and of its beginning when a release made into it ranks above
    (correlators.causes `_deploy_into_the_story`), the challenger whose canary failed in it,
    and each version a rollback moved away from. Inputs: (incident id, ranked causes) pairs
    and (intent id, from_version) pairs."""
    out: dict[str, str] = {}
    for incident_id, causes in incident_causes:
        deploys = [c for c in causes if c.get("kind") == "deploy"]
        # A fix forward blamed for a later KPI drop ranks first; the version it replaced, the
        # suspect the incident began with, stays blamed: rolled back to, its symptoms return.
        began = [c for c in deploys if "incident_began_at" not in (c.get("evidence") or {})]
        for c in deploys[:1] + began[:1]:
            version = (c.get("evidence") or {}).get("version")
            if version is not None:
                out.setdefault(str(version), f"incident {incident_id} suspects its deploy")
        # A challenger whose canary failed in the incident (pulled or not) is blamed too.
        for c in causes:
            challenger = (c.get("evidence") or {}).get("challenger_version") if c.get("kind") == "canary" else None
            if challenger not in (None, "?"):
                out.setdefault(str(challenger), f"incident {incident_id}: its canary failed")
    for intent_id, version in rolled_back_from:
        out.setdefault(version, f"rollback {intent_id} moved away from it")
    return out


# --------------------------------------------------------------------------- one layer
class Move(StrEnum):
    """What to do with one layer, from what it serves now."""

    ALREADY = "already"  # it serves the target: nothing to do (a retry, or a crash after acting)
    ACT = "act"  # it serves the version the intent moves away from: move it
    SUPERSEDED = "superseded"  # it serves something else: someone moved it since; never touch it
    UNKNOWN = "unknown"  # it cannot say: act only when the layer is known to be idempotent by key


def decide_move(serving: str | None, from_version: str | None, to_version: str) -> Move:
    """Only a layer still on `from_version` is moved, so a restart or a second replica never
    reverses a change somebody made after the intent was recorded. `from_version` None is a
    layer read as absent then: moved only while it still is (a pipeline's v3 set since stays)."""
    if serving == to_version:
        return Move.ALREADY
    if serving is None:
        return Move.ACT if from_version is None else Move.UNKNOWN
    if serving == from_version:
        return Move.ACT
    return Move.SUPERSEDED
