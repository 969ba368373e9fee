"""Where messages go: a model's channels by severity, and which notifier takes which
kind of message. Notifiers are registered once with their routing rule, so nothing
downstream asks a notifier's name to decide what it gets."""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from alerts.outbox import MessageKind, Notifier
from alerts.policy import Severity


@dataclass(frozen=True)
class Routes:
    """Where a model's alerts go."""

    owner_channel: str | None
    oncall_channel: str | None = None

    def channels(self, severity: Severity | None) -> list[str]:
        out = [c for c in (self.owner_channel,) if c]
        if severity == Severity.CRITICAL and self.oncall_channel and self.oncall_channel not in out:
            out.append(self.oncall_channel)
        return out


@dataclass(frozen=True)
class NotifierRoute:
    """What a notifier is sent. A chat tool gets one incident message per channel, kept
    up to date, replies in its thread when the incident escalates or resolves, and one
    message per shared cause; a timeline (Grafana annotations) one per incident, plus deploys and
    rollbacks."""

    kinds: frozenset[MessageKind] = frozenset({MessageKind.INCIDENT, MessageKind.REPLY, MessageKind.GROUP})
    per_channel: bool = True


CHAT_ROUTE = NotifierRoute()
TIMELINE_ROUTE = NotifierRoute(frozenset({MessageKind.INCIDENT, MessageKind.DEPLOY, MessageKind.ROLLBACK}),
                               per_channel=False)


def route_of(notifier: Notifier) -> NotifierRoute:
    """A notifier states its route (`route` attribute); one that does not is a chat tool."""
    route = getattr(notifier, "route", None)
    return route if isinstance(route, NotifierRoute) else CHAT_ROUTE


class NotifierRegistry(Mapping[str, Notifier]):
    """The notifiers of one process, by name, each with its route."""

    def __init__(self, notifiers: Mapping[str, Notifier]) -> None:
        self._notifiers = dict(notifiers)
        self._routes = {name: route_of(n) for name, n in self._notifiers.items()}

    def __getitem__(self, name: str) -> Notifier:
        return self._notifiers[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._notifiers)

    def __len__(self) -> int:
        return len(self._notifiers)

    def taking(self, kind: MessageKind, *, per_channel: bool | None = None) -> list[str]:
        """Names of the notifiers that take `kind` (and, if given, deliver it per channel)."""
        return [name for name, r in self._routes.items()
                if kind in r.kinds and (per_channel is None or r.per_channel == per_channel)]
