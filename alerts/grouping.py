"""One page for a shared cause: models whose incidents share a top cause (a GPU node, an
upstream feature source, a service, a deploy) form a group that pages once.

Alertmanager's timing, with its defaults: a new group waits `group_wait` (30 s) for more
members before its first page, and holds its members' own pages meanwhile; a changed
group pages again no sooner than `group_interval` (5 m) after the last; an unchanged one
is repeated after `repeat_interval` (4 h) from the last message that told someone (an
edit of the message for a changed group tells no one). A group "fires" once it has `min_members` open
members (2): then it is the one that pages, and the default inhibit rule mutes the
members' own pages. A group with one member never pages: that member pages as itself
once the wait is over. The decision is pure; the store keeps one open group per key
(a unique column), so replicas that own different members agree on the group.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from alerts.matchers import Labels, label_key

GROUPABLE_CAUSES = ("gpu_saturation", "upstream_drift", "service", "source_unavailable", "deploy")
# Grouped unless configured otherwise. A deploy cause names one model's version, so it is
# never shared today; grouping it would only hold a rollback-worthy page for group_wait.
DEFAULT_GROUPED = ("gpu_saturation", "upstream_drift", "service", "source_unavailable")


@dataclass(frozen=True)
class GroupSettings:
    enabled: bool = True
    group_by: tuple[str, ...] = ("cause_kind", "cause")
    cause_kinds: tuple[str, ...] = DEFAULT_GROUPED
    group_wait: float = 30.0
    group_interval: float = 300.0
    repeat_interval: float = 4 * 3600.0
    min_members: int = 2


def group_key(labels: Labels, settings: GroupSettings) -> str | None:
    """The group an incident belongs to, or None (no top cause of a groupable kind)."""
    kind, cause = labels.get("cause_kind", ""), labels.get("cause", "")
    if not settings.enabled or not isinstance(kind, str) or kind not in settings.cause_kinds or not cause:
        return None
    parts = label_key(labels, settings.group_by)
    return ";".join(f"{n}={'|'.join(v)}" for n, v in zip(settings.group_by, parts, strict=True))[:300]


@dataclass(frozen=True)
class Member:
    model: str
    severity: str
    open: bool
    muted: bool = False  # a silence or its maintenance window mutes it: the group does not page for it
    # What of its story would update its own message (`evidence_key`): its findings and top cause.
    evidence: str = ""


@dataclass(frozen=True)
class GroupState:
    created_at: float
    notified_at: float | None
    notified_digest: str | None
    members: tuple[Member, ...]
    # The last message that told someone (the first page, a thread reply): repeat_interval
    # counts from it. notified_at also moves on an edit, which notifies no one.
    told_at: float | None = None

    @property
    def open_members(self) -> list[Member]:
        return [m for m in self.members if m.open]

    def severity(self) -> str:
        sev = {m.severity for m in self.open_members} or {m.severity for m in self.members}
        return "critical" if "critical" in sev else "warning"


class GroupStep(StrEnum):
    WAIT = "wait"  # gathering members: hold the members' own pages
    NONE = "none"  # nothing to send
    FIRST = "first"  # the group's first page
    CHANGED = "changed"  # members or severity changed, past group_interval
    REPEAT = "repeat"
    RESOLVED = "resolved"  # no member open any more


@dataclass(frozen=True)
class GroupDecision:
    step: GroupStep
    firing: bool  # it has min_members open members: it pages, its members do not
    digest: str

    @property
    def notify(self) -> bool:
        return self.step in (GroupStep.FIRST, GroupStep.CHANGED, GroupStep.REPEAT, GroupStep.RESOLVED)

    @property
    def holds_members(self) -> bool:
        return self.step == GroupStep.WAIT


def evidence_key(findings: Sequence[Mapping[str, Any]], top: Mapping[str, Any] | None) -> str:
    """A member's evidence as its own message's digest sees it (alerts.pipeline.incident_digest):
    which things are wrong and the top cause, not their numbers. The group's message lists
    that evidence, so a change of it updates the group's message too; a value that only
    moves updates neither."""
    body = [sorted({(str(f.get("kind")), str(f.get("entity"))) for f in findings}),
            [str(top.get("kind")), str(top.get("entity"))] if top else None]
    return hashlib.sha256(json.dumps(body).encode()).hexdigest()[:16]


def group_digest(members: Sequence[Member]) -> str:
    """A member muted or no longer muted changes it: whom the group pages for changed. So
    does a change of a member's evidence (the message shows it)."""
    body = sorted((m.model, m.severity, m.open, *(("muted",) if m.muted else ()),
                   *((m.evidence,) if m.evidence else ())) for m in members)
    return hashlib.sha256(json.dumps(body).encode()).hexdigest()[:32]


def decide_group(g: GroupState, now: float, settings: GroupSettings) -> GroupDecision:
    digest = group_digest(g.members)
    open_n = len(g.open_members)
    # Once it has paged, the group speaks for its members until the last resolves: a
    # member left alone must not page again on its own for the same cause.
    firing = open_n >= settings.min_members or (g.notified_at is not None and open_n > 0)
    if g.notified_at is None:
        if open_n == 0:
            return GroupDecision(GroupStep.NONE, False, digest)
        if now < g.created_at + settings.group_wait:
            return GroupDecision(GroupStep.WAIT, False, digest)
        return GroupDecision(GroupStep.FIRST if firing else GroupStep.NONE, firing, digest)
    if open_n == 0:
        return GroupDecision(GroupStep.RESOLVED, False, digest)
    if digest != g.notified_digest and now >= g.notified_at + settings.group_interval:
        return GroupDecision(GroupStep.CHANGED, firing, digest)
    told_at = g.notified_at if g.told_at is None else g.told_at
    if now >= told_at + settings.repeat_interval:
        return GroupDecision(GroupStep.REPEAT, firing, digest)
    return GroupDecision(GroupStep.NONE, firing, digest)
