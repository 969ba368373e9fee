"""Outbox rows for receivers (PagerDuty, Opsgenie, webhook, Alertmanager), written in the
transaction that changed the incident, like the chat messages (monitor/cycle/messages.py).

A receiver takes an incident from its first change at a severity it matches; from then on
every change goes to it (a later warning update, the acknowledgement, the resolution), so
nothing it paged for is left open. Whether it has the incident already is read from the
outbox itself in the same transaction: no other state to keep in step.
"""
from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy.orm import Session

from alerts.outbox import MessageKind, Notifier
from alerts.payload import IncidentSnapshot
from alerts.receivers.base import receivers_of
from alerts.receivers.record import receiver_record
from monitor.store.repository import Store


class ReceiverWriter:
    def __init__(self, store: Store, notifiers: Mapping[str, Notifier]) -> None:
        self.store = store
        self.receivers = receivers_of(notifiers)

    def incident(self, s: Session, snap: IncidentSnapshot, links: dict[str, str | None], now: float) -> list[str]:
        """Enqueue the incident's record for each receiver that takes it; their names."""
        key = f"incident:{snap.incident_id}"
        taken: list[str] = []
        for name, r in self.receivers.items():
            if r.match.takes(snap.model, snap.severity) or self.store.outbox.has_key(s, name, key):
                record = receiver_record(snap, prefix=r.dedup_prefix, updated_at=now, links=links)
                self.store.enqueue(s, name, MessageKind.INCIDENT, key, record, now)
                taken.append(name)
        return taken
