"""Silences: matchers, a start, an end, who made one and why (Alertmanager's model).

A silence mutes every alert whose labels (alerts/labels.py) satisfy all its matchers
while it is active (starts_at <= t < ends_at). A muted incident still opens, updates
and resolves and is recorded; it only pages no one. Expiring a silence ends it now;
it is kept, so the list shows what was silenced, by whom, and until when.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from alerts.matchers import Labels, Matcher, matches_all

MAX_SILENCE_S = 366 * 86400.0  # a year and a day: longer is a config change, not a silence


class SilenceState(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    EXPIRED = "expired"


class SilenceError(ValueError):
    """A silence that cannot be made; `field` names the offending input."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = message


@dataclass(frozen=True)
class Silence:
    id: int | None
    matchers: tuple[Matcher, ...]
    starts_at: float
    ends_at: float
    created_by: str
    comment: str
    updated_at: float | None = None

    def state(self, now: float) -> SilenceState:
        if now >= self.ends_at:
            return SilenceState.EXPIRED
        return SilenceState.ACTIVE if now >= self.starts_at else SilenceState.PENDING

    def mutes(self, labels: Labels, now: float) -> bool:
        return self.state(now) == SilenceState.ACTIVE and matches_all(self.matchers, labels)

    def describe(self) -> str:
        return f"silence {self.id} ({', '.join(map(str, self.matchers))}) by {self.created_by}"

    @property
    def problem(self) -> str | None:
        """Why this silence may not mute as its maker meant: a matcher stored by an older
        Vigil in Python's regex syntax (alerts/matchers.py, `matcher_from_stored`)."""
        said = [f"matchers[{i}]: {m.problem}" for i, m in enumerate(self.matchers) if m.problem]
        return "; ".join(said) or None

    def to_api(self, now: float) -> dict[str, Any]:
        return {"id": self.id, "matchers": [m.to_api() | {"text": str(m)} for m in self.matchers],
                "starts_at": self.starts_at, "ends_at": self.ends_at, "created_by": self.created_by,
                "comment": self.comment, "status": {"state": str(self.state(now))}, "updated_at": self.updated_at,
                "problem": self.problem}


def check_new(matchers: Sequence[Matcher], starts_at: float, ends_at: float, created_by: str, comment: str,
              now: float) -> None:
    """Refuse a silence that could never work or that would mute everything, naming the field."""
    if not matchers:
        raise SilenceError("matchers", "expected at least one matcher (e.g. model=\"recommender\")")
    if all(m.matches({}) for m in matchers):
        raise SilenceError("matchers", "these matchers also match an alert with no labels, so they would "
                                       "silence everything; add an equality or regex matcher with a value")
    if ends_at <= starts_at:
        raise SilenceError("ends_at", "expected a time after starts_at")
    if ends_at <= now:
        raise SilenceError("ends_at", "expected a time in the future")
    if ends_at - max(starts_at, now) > MAX_SILENCE_S:
        raise SilenceError("ends_at", f"a silence lasts at most {MAX_SILENCE_S / 86400:.0f} days; "
                                      "for a standing rule use inhibit_rules or mute_time_intervals")
    if not created_by.strip():
        raise SilenceError("created_by", "expected who makes the silence")
    if not comment.strip():
        raise SilenceError("comment", "expected why (a ticket, a maintenance, ...)")


def muting(silences: Iterable[Silence], labels: Labels, now: float) -> list[Silence]:
    return [s for s in silences if s.mutes(labels, now)]
