"""Outbox rows for receivers (PagerDuty, Opsgenie, webhook, Alertmanager), written in the
transaction that changed the incident, like the chat messages (monitor/cycle/messages.py).

A receiver takes an incident from its first change at a severity it matches; from then on
every change goes to it (a later warning update, the acknowledgement, the resolution), so
nothing it paged for is left open. Whether it has the incident already is read from the
outbox itself in the same transaction: no other state to keep in step.

A shared cause pages receivers once, as its group (key `group:<id>`, dedup key
`<prefix>-group-<id>`). While a group holds a member, the member's own incident pages no
receiver that does not have it already: one that has it (it paged on its own before it
joined) keeps getting its changes of state and severity, so nothing is left open there.

A receiver with `events: [rollback]` is also told of each rollback's outcome (key
`rollback:<model>:<intent>`; Opsgenie's note on the incident's alert under the incident's
key, behind its page), in the outcome's transaction, for the models it matches;
with `[deploy]`, of each alias move the registry poll saw (key `deploy:<model>:...`).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from alerts.lifecycle import IncidentStatus
from alerts.outbox import MessageKind, Notifier
from alerts.payload import IncidentSnapshot
from alerts.receivers.base import receivers_of
from alerts.receivers.changes import deploy_record, rollback_record
from alerts.receivers.mapping import HELD
from alerts.receivers.record import dedup_key, group_record, receiver_record, state_of
from monitor.store import groups
from monitor.store.repository import Store
from monitor.store.tables import MessageRefRow


class ReceiverWriter:
    def __init__(self, store: Store, notifiers: Mapping[str, Notifier]) -> None:
        self.store = store
        self.receivers = receivers_of(notifiers)

    def incident(self, s: Session, snap: IncidentSnapshot, links: dict[str, str | None], now: float,
                 held: bool | None = None) -> list[str]:
        """Enqueue the incident's record for each receiver that takes it; their names.

        `held`: a shared cause pages for this incident; None reads it from the store (the
        incident is an open member of an open group that has paged)."""
        if not self.receivers:
            return []
        key = f"incident:{snap.incident_id}"
        if held is None:
            held = snap.status == IncidentStatus.OPEN and groups.paged_for(s, snap.model, snap.incident_id)
        taken: list[str] = []
        for name, r in self.receivers.items():
            # a resolve only closes what a receiver has: it never opens anything there
            takes = (r.incidents and not held and snap.status != IncidentStatus.RESOLVED
                     and r.match.takes(snap.model, snap.severity))
            if takes or self.store.outbox.has_key(s, name, key):
                record = receiver_record(snap, prefix=r.dedup_prefix, updated_at=now, links=links)
                # held: an edit (an ack, a rollback shown) or its group pages: it pages no one,
                # not even past an ack that lapsed under a silence (told when it ends)
                self.store.enqueue(s, name, MessageKind.INCIDENT, key, {**record, HELD: True} if held else record,
                                   now)
                taken.append(name)
        return taken

    def held_change(self, s: Session, snap: IncidentSnapshot, links: dict[str, str | None],
                    now: float) -> list[str]:
        """A change of an incident its shared cause holds, for each receiver that has it and
        does not show its state already (state and severity, as its last delivery left them);
        their names. The cycle sees such an incident as changed every cycle (its chat message
        waits for the hold to end), so without this each cycle re-sent an identical trigger."""
        key = f"incident:{snap.incident_id}"
        taken: list[str] = []
        for name, r in self.receivers.items():
            if not self.store.outbox.has_key(s, name, key):
                continue
            # the group pages for it: an escalation past a lapsed ack opens no alert of its own
            record = {**receiver_record(snap, prefix=r.dedup_prefix, updated_at=now, links=links), HELD: True}
            if self._shows(s, name, key, record):
                continue
            self.store.enqueue(s, name, MessageKind.INCIDENT, key, record, now)
            taken.append(name)
        return taken

    def _shows(self, s: Session, name: str, key: str, record: dict[str, Any]) -> bool:
        """Whether the receiver's last delivery of `key` left it at `record`'s state and
        severity, with nothing of it still on its way."""
        ref = s.get(MessageRefRow, (name, key))
        sent = ref.ref if ref is not None and isinstance(ref.ref, dict) else {}
        if sent.get("state") != state_of(record) or sent.get("severity") != record["severity"]:
            return False
        return not self.store.outbox.has_open(s, name, key)

    def group(self, s: Session, payload: dict[str, Any], now: float) -> list[str]:
        """A shared cause's page for each receiver that takes one of its open members at the
        group's severity (or has the group already: its resolve must reach it); their names."""
        key = f"group:{payload['group_id']}"
        # a member muted by a silence or its maintenance window is not paged through its group
        open_models = [str(m["model"]) for m in payload.get("models") or [] if m.get("open") and not m.get("muted")]
        resolved = payload["status"] == IncidentStatus.RESOLVED
        taken: list[str] = []
        for name, r in self.receivers.items():
            takes = r.incidents and not resolved and any(r.match.takes(m, payload["severity"]) for m in open_models)
            if takes or self.store.outbox.has_key(s, name, key):
                record = group_record(payload, prefix=r.dedup_prefix, updated_at=now)
                self.store.enqueue(s, name, MessageKind.INCIDENT, key, record, now)
                taken.append(name)
        return taken

    def rollback(self, s: Session, model: str, payload: dict[str, Any], now: float, *, key: str) -> list[str]:
        """A rollback's outcome for each receiver told of the model's rollbacks; their names.
        The record names the incident by the key the receiver was paged with, if it was."""
        taken: list[str] = []
        for name, r in self.receivers.items():
            if r.takes_rollback(model):
                paged_as = self._paged_as(s, name, r.dedup_prefix, payload.get("incident_id"))
                record = rollback_record(payload, paged_as)
                # behind the page it tells of (a retried create, an escalation's new alert): the
                # incident's key keeps the order and gives the delivery the key that page left
                told = (f"incident:{payload['incident_id']}" if paged_as and r.follows_incident
                        else f"rollback:{model}:{key}")
                self.store.enqueue(s, name, MessageKind.ROLLBACK, told, record, now)
                taken.append(name)
        return taken

    def _paged_as(self, s: Session, name: str, prefix: str, incident_id: Any) -> str | None:
        if incident_id is None or not self.store.outbox.has_key(s, name, f"incident:{incident_id}"):
            return None
        ref = s.get(MessageRefRow, (name, f"incident:{incident_id}"))
        sent = ref.ref.get("dedup_key") if ref is not None and isinstance(ref.ref, dict) else None
        return sent if isinstance(sent, str) and sent else dedup_key(prefix, int(incident_id))

    def deploy(self, s: Session, model: str, payload: dict[str, Any], now: float, *, key: str) -> list[str]:
        """A deploy the registry poll saw, for each receiver told of the model's deploys; their names."""
        taken = [name for name, r in self.receivers.items() if r.takes_deploy(model)]
        for name in taken:
            self.store.enqueue(s, name, MessageKind.DEPLOY, key, deploy_record(payload), now)
        return taken
