"""Who may press a Slack button: a user listed by ID, or a member of a listed user group.

Pure, apart from the membership lookup it is given: `UsergroupMembers` caches what
`usergroups.users.list` said for a minute, so a burst of clicks costs one Slack call per
group, and a person removed from a group loses the buttons within that minute.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

GROUP_CACHE_S = 60.0


class GroupLookupFailed(Exception):
    """A user group's members could not be read (Slack said no, or did not answer)."""


@dataclass(frozen=True)
class SlackPeople:
    users: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.users or self.groups)

    def mention(self) -> str:
        """Slack mrkdwn naming them: '<@U1>, <@U2> or a member of <!subteam^S1>'."""
        names = [f"<@{u}>" for u in self.users]
        names += [f"a member of <!subteam^{g}>" for g in self.groups]
        return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


@dataclass(frozen=True)
class Permit:
    allowed: bool
    why: str  # how the user qualified ("listed", "member of S1"), or what went wrong looking


def permit(user_id: str, people: SlackPeople, members: Callable[[str], frozenset[str]]) -> Permit:
    """Whether `user_id` is one of `people`; a group that cannot be read counts as not a member."""
    if user_id in people.users:
        return Permit(True, "listed")
    problems: list[str] = []
    for group in people.groups:
        try:
            if user_id in members(group):
                return Permit(True, f"member of {group}")
        except GroupLookupFailed as e:
            problems.append(str(e))
    return Permit(False, "; ".join(problems))


class UsergroupMembers:
    """`fetch(group) -> user IDs`, remembered for `ttl_s`; failures are not remembered."""

    def __init__(self, fetch: Callable[[str], list[str]], ttl_s: float = GROUP_CACHE_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._fetch = fetch
        self._ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._seen: dict[str, tuple[float, frozenset[str]]] = {}

    def __call__(self, group: str) -> frozenset[str]:
        with self._lock:
            hit = self._seen.get(group)
        if hit is not None and self._clock() - hit[0] < self._ttl_s:
            return hit[1]
        users = frozenset(self._fetch(group))  # outside the lock: one slow group never blocks another
        with self._lock:
            self._seen[group] = (self._clock(), users)
        return users
