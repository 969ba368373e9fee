"""What makes a notifier a receiver: it takes whole incidents (one record per state
change, not one message per chat channel) for the models and severities it matches."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from alerts.outbox import Notifier
from alerts.routing import NotifierRoute

# Receivers are fed by the receiver writer (monitor/cycle/receivers.py), not by the chat or
# timeline routes: an empty route keeps the generic writers from sending them anything.
RECEIVER_ROUTE = NotifierRoute(kinds=frozenset(), per_channel=False)
SEVERITIES = ("warning", "critical")


@dataclass(frozen=True)
class Match:
    """Which incidents a receiver takes: models (empty: all) and severities.

    An incident is taken from the first change at a matching severity on, and then every
    change of it (an update at a lower severity, the acknowledgement, the resolution)
    follows, so a page is never left open on the receiver's side."""

    models: frozenset[str] = frozenset()
    severities: frozenset[str] = frozenset(SEVERITIES)

    def takes(self, model: str, severity: str) -> bool:
        return (not self.models or model in self.models) and severity in self.severities


@dataclass(frozen=True)
class Receiving:
    """What the receiver writer needs of a receiver: what it takes, and the prefix of its
    dedup keys (distinct per Vigil installation sharing one PagerDuty service, say)."""

    match: Match = Match()
    dedup_prefix: str = "vigil"
    incidents: bool = True  # pages: a receiver told only of rollbacks (a change log) is paged nothing
    rollbacks: bool = False  # each rollback's outcome, for the models it matches (no severity: it has none)
    deploys: bool = False  # each alias move the registry poll sees, likewise
    # A rollback of an incident it paged for is sent under the incident's key, after its page,
    # with the incident's last delivery's ref: an Opsgenie note on an alert not yet created is
    # accepted and then dropped, and both it and a PagerDuty change event must name the alert
    # on-call has (an escalation past a lapsed ack closed the one paged first, `<key>~2`).
    follows_incident: bool = False

    def takes_rollback(self, model: str) -> bool:
        return self.rollbacks and self._model(model)

    def takes_deploy(self, model: str) -> bool:
        return self.deploys and self._model(model)

    def _model(self, model: str) -> bool:
        return not self.match.models or model in self.match.models


ALL = Receiving()  # every model, every severity, keys vigil-incident-<id>


def receivers_of(notifiers: Mapping[str, Notifier]) -> dict[str, Receiving]:
    """The receivers among `notifiers`, by name."""
    out: dict[str, Receiving] = {}
    for name, n in notifiers.items():
        receiving: Any = getattr(n, "receiving", None)
        if getattr(n, "route", None) is RECEIVER_ROUTE and isinstance(receiving, Receiving):
            out[name] = receiving
    return out


@runtime_checkable
class KeepsAlive(Protocol):
    """A receiver whose backend forgets an open alert unless it is sent again (Alertmanager
    resolves an alert once its endsAt passes). The outbox sender calls `keep_alive` after
    each round with the refs of the incidents the receiver has, none with a change waiting."""

    name: str

    def keep_alive_due(self) -> bool:
        """Whether a round is due: the sender reads the refs (a query over every incident the
        receiver has) only then, not on every few-second sender round."""

    def keep_alive(self, refs: Mapping[str, dict[str, Any]]) -> int:
        """Re-send what is due among `refs` (outbox key -> ref); the number re-sent."""

    def unsettled(self) -> bool:
        """Whether a re-send may have undone a change delivered meanwhile: the sender then
        reads the refs again and calls `settle`, every round until it is not."""

    def settle(self, refs: Mapping[str, dict[str, Any]]) -> int:
        """Send again, at once, the last delivered state of each key re-sent by `keep_alive`
        whose ref changed since it read it (`refs`: read after that push); the number sent."""
        ...
