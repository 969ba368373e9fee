"""PagerDuty Events API v2: trigger, acknowledge and resolve one PD alert per incident.

POST {url}/v2/enqueue with the event; PagerDuty answers 202
`{"status": "success", "message": "Event processed", "dedup_key": ...}`. Every event of an
incident carries the same `dedup_key` (the receiver record's), so PagerDuty folds a
retried or repeated trigger into the alert it already has: a restart, a lost answer or a
second replica never opens a second PD incident. 400 `{"status": "invalid event",
"message", "errors": [...]}` fails the message with PagerDuty's own words; 429 and 5xx are
retried (alerts/receivers/http.py). The routing key is read on each call from its
environment variable or file and is never logged nor put in an error.

With `events: [rollback]`, each rollback that moved production (done) or tried to (failed)
is a change event, POST {url}/v2/change/enqueue (202; the same routing key serves both):
it notifies no one and shows under the service's recent changes, beside the incident. So
is each deploy the registry poll sees, with `events: [deploy]`.
"""
from __future__ import annotations

import logging
from typing import Any

import httpx

from alerts.outbox import DeliveryResult, DeliveryStatus, MessageKind, OutboxMessage
from alerts.receivers.base import ALL, RECEIVER_ROUTE, Receiving
from alerts.receivers.changes import changed_production, pagerduty_change
from alerts.receivers.http import HttpCaller, SecretSource, json_object, run_delivery, said
from alerts.receivers.mapping import calls, pagerduty_event, sent_ref
from alerts.receivers.record import as_sent

log = logging.getLogger("vigil.receivers.pagerduty")
DEFAULT_URL = "https://events.pagerduty.com"


def explain(resp: httpx.Response) -> str:
    """PagerDuty's error body in a line: its status, message and every error it listed."""
    doc = json_object(resp)
    if doc is None:
        return said(resp)
    errors = doc.get("errors") or []
    detail = "; ".join(map(str, errors)) if isinstance(errors, list) else str(errors)
    parts = [str(doc.get("status") or ""), str(doc.get("message") or ""), detail]
    return ": ".join(p for p in parts if p) or said(resp)


class PagerDutyReceiver:
    route = RECEIVER_ROUTE

    def __init__(self, name: str, routing_key: SecretSource, http: HttpCaller, *, url: str = DEFAULT_URL,
                 source: str = "", receiving: Receiving = ALL) -> None:
        self.receiving = receiving
        self.name, self.routing_key, self.http, self.source = name, routing_key, http, source
        self.endpoint = url.rstrip("/") + "/v2/enqueue"
        self.change_endpoint = url.rstrip("/") + "/v2/change/enqueue"

    def deliver(self, message: OutboxMessage) -> DeliveryResult:
        """Every call of one message ends within DELIVERY_BUDGET_S of its start (alerts/receivers/http.py)."""
        deadline = self.http.deadline()
        if message.kind == MessageKind.DEPLOY or (message.kind == MessageKind.ROLLBACK
                                                  and changed_production(message.payload)):
            return run_delivery(lambda: self._change(message.payload, message.ref, deadline))
        if message.kind != MessageKind.INCIDENT:  # a dry run or a suggestion changed nothing
            return DeliveryResult(DeliveryStatus.DELIVERED, ref=message.ref)
        return run_delivery(lambda: self._send(as_sent(message.payload, message.ref), message.ref, deadline))

    def _change(self, record: dict[str, Any], ref: dict[str, Any] | None, deadline: float) -> dict[str, Any] | None:
        """A change event; one of an incident it paged for comes under the incident's key, with
        its ref: it names the alert the incident's last delivery left (an escalation past a
        lapsed ack resolved the one the record was written with and paged `<key>~2`)."""
        paged = (ref or {}).get("dedup_key")
        if record.get("incident_dedup_key") and isinstance(paged, str) and paged:
            record = {**record, "incident_dedup_key": paged}
        event = pagerduty_change(record, self.routing_key.read(), source=self.source)
        resp = self.http.post(self.change_endpoint, event, {}, explain, deadline=deadline)
        log.info("pagerduty change event accepted", extra={"receiver": self.name, "model": record["model"],
                                                          "kind": record["kind"], "status": resp.status_code})
        return ref

    def _send(self, record: dict[str, Any], ref: dict[str, Any] | None, deadline: float) -> dict[str, Any]:
        key = self.routing_key.read()
        sent = record
        for action, sent in calls(record, ref, open_="trigger", ack="acknowledge", close="resolve"):
            resp = self.http.post(self.endpoint, pagerduty_event(sent, action, key, source=self.source), {},
                                  explain, deadline=deadline)
            log.info("pagerduty event accepted", extra={"receiver": self.name, "action": action,
                                                        "dedup_key": sent["dedup_key"], "status": resp.status_code})
        return sent_ref(sent, ref)  # the key of the alert opened last (`calls`)

