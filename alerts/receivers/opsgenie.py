"""Opsgenie Alert API: create (alias = the incident's dedup key), acknowledge, close, and
update priority (`PUT .../priority`) when the incident's severity changes.

`Authorization: GenieKey <key>`; base URL https://api.opsgenie.com (US) or
https://api.eu.opsgenie.com (EU). Opsgenie processes requests asynchronously: it answers
202 `{"result": "Request will be processed", "took", "requestId"}`, kept in the ref so a
person can look the request up. A 202 is not a page: a create or a close is delivered only
once `GET /v2/alerts/requests/{requestId}` says `isSuccess` (polled for at most
PROCESSING_WAIT_S; still processing or failed: RETRY through the outbox), so a close is
never sent before its create is done, and a create that fails later is sent again (a key
without Read Access cannot ask: its 202 is taken, with a warning). A
create for an alias that is already open is folded into that alert (its count goes up),
so a retried create never opens a second alert; acknowledge and close address the alert
by alias (`identifierType=alias`). 400/422 `{"message", "errors": {...}}` fail the message
with Opsgenie's words; 429 and 5xx are retried (alerts/receivers/http.py). The API key is never logged.
"""
from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

import httpx

from alerts.outbox import DeliveryResult, DeliveryStatus, MessageKind, OutboxMessage
from alerts.receivers.base import ALL, RECEIVER_ROUTE, Receiving
from alerts.receivers.changes import rollback_note
from alerts.receivers.http import (
    DELIVERY_BUDGET_S,
    HttpCaller,
    SecretSource,
    Transient,
    json_object,
    run_delivery,
    said,
    whole_answer,
)
from alerts.receivers.mapping import HELD, OPSGENIE_PRIORITY, calls, opsgenie_action, opsgenie_create, sent_ref
from alerts.receivers.record import as_sent

log = logging.getLogger("vigil.receivers.opsgenie")
REGION_URLS = {"us": "https://api.opsgenie.com", "eu": "https://api.eu.opsgenie.com"}
# How long a create or a close is waited for (Opsgenie processes in well under a second
# when well); longer: back to the outbox, inside the sender's claim.
PROCESSING_WAIT_S = 5.0
CONFIRMED = ("create", "close")  # the calls that open or end a page


def explain(resp: httpx.Response) -> str:
    """Opsgenie's error body in a line: its message and each field error it named."""
    doc = json_object(resp)
    if doc is None:
        return said(resp)
    errors = doc.get("errors") or {}
    detail = "; ".join(f"{k}: {v}" for k, v in errors.items()) if isinstance(errors, dict) else str(errors)
    text = ": ".join(p for p in (str(doc.get("message") or ""), detail) if p) or said(resp)
    return f"{text} (requestId {doc['requestId']})" if doc.get("requestId") else text


class OpsgenieReceiver:
    route = RECEIVER_ROUTE

    def __init__(self, name: str, api_key: SecretSource, http: HttpCaller, *, url: str = REGION_URLS["us"],
                 source: str = "Vigil", responders: list[dict[str, str]] | None = None,
                 receiving: Receiving = ALL) -> None:
        self.receiving = receiving
        self.name, self.api_key, self.http, self.source = name, api_key, http, source
        self.base = url.rstrip("/") + "/v2/alerts"
        self.responders = responders or []

    def deliver(self, message: OutboxMessage) -> DeliveryResult:
        """Every call of one message (and each status check) ends within DELIVERY_BUDGET_S of
        its start, inside the outbox claim; what is left then goes back to the outbox (RETRY)."""
        deadline = self.http.deadline()
        if message.kind == MessageKind.ROLLBACK and message.payload.get("incident_dedup_key"):
            return run_delivery(lambda: self._note(message.payload, message.ref, deadline))
        if message.kind != MessageKind.INCIDENT:  # a rollback of an incident it has no alert of
            return DeliveryResult(DeliveryStatus.DELIVERED, ref=message.ref)
        return run_delivery(lambda: self._send(as_sent(message.payload, message.ref), message.ref, deadline))

    def _send(self, record: dict[str, Any], ref: dict[str, Any] | None, deadline: float) -> dict[str, Any]:
        headers = {"Authorization": f"GenieKey {self.api_key.read()}"}
        request_ids: list[str] = []
        actions = calls(record, ref, open_="create", ack="acknowledge", close="close")
        names = [a for a, _ in actions]
        # The severity the alert's priority shows: a held change (below) leaves it behind `severity`.
        shown = (ref or {}).get("priority_of") or (ref or {}).get("severity")
        folded = names == ["create"] and ref is not None and shown not in (None, record["severity"])
        if folded and not record.get(HELD):
            # A create on an open alias is folded into the alert, fields and all: its priority
            # moves only through its own call (an escalation must reach P1 policies). A new
            # alert (after a close, under its own alias) is created at its priority. Not for a
            # held change: its group's P1 pages for it, and a member's (acknowledged) alert
            # raised to P1 set off the on-call's P1 policies a second time.
            actions.append(("priority", record))
        sent = record
        for action, sent in actions:
            url, body = self._request(sent, action)
            resp = self.http.post(url, body, headers, explain, method="PUT" if action == "priority" else "POST",
                                  deadline=deadline)
            request_id = _request_id(resp)
            request_ids.append(request_id)
            log.info("opsgenie request accepted", extra={"receiver": self.name, "action": action,
                                                         "alias": sent["dedup_key"], "request_id": request_id})
            if action in CONFIRMED and request_id:
                self._confirm(request_id, action, sent["dedup_key"], headers, deadline)
        # Only a new alert or a priority call moves the priority (an ack, a folded create do not).
        moved = shown is None or "close" in names or ("priority", record) in actions
        return {**sent_ref(sent, ref), "request_ids": request_ids,  # the alias opened last (`calls`)
                "priority_of": sent["severity"] if moved else shown}

    def _confirm(self, request_id: str, action: str, alias: str, headers: dict[str, str], budget: float) -> None:
        """Wait (bounded, and never past the delivery's `budget`) until Opsgenie has processed
        the request; raise Transient unless it succeeded. A close of an alias with no open
        alert has nothing left to close."""
        url = f"{self.base}/requests/{quote(request_id, safe='')}"
        deadline, pause = min(self.http.monotonic() + PROCESSING_WAIT_S, budget), 0.1
        while True:
            # One try per poll, cut at the deadline: a slow status endpoint must not hold the claim.
            timeout = max(0.1, min(self.http.time_left(f"status check of {action}", budget),
                                   deadline - self.http.monotonic()))
            try:
                resp = whole_answer(self.http.http, "GET", url, headers=headers, timeout=timeout)
                if resp.status_code in (401, 403):
                    # An integration may create without reading: the 202 is all it can know.
                    log.warning("opsgenie %s accepted but not checked: the API key cannot read request status "
                                "(turn on the integration's Read Access)", action,
                                extra={"receiver": self.name, "alias": alias, "request_id": request_id})
                    return
                data = (json_object(resp) or {}) if resp.is_success else {}  # 404 until it is processed
            except httpx.HTTPError:
                data = {}
            found = data.get("data")
            status: dict[str, Any] = found if isinstance(found, dict) else {}
            if status.get("isSuccess") is True:
                return
            if status.get("isSuccess") is False:
                said_ = str(status.get("status") or "no status")
                if action == "close" and said_ == "Alert does not exist":
                    return
                raise Transient(f"Opsgenie: {action} of alias {alias} failed when processed: {said_} "
                                f"(requestId {request_id}); will retry")
            if self.http.monotonic() + pause > deadline:
                waited = (f"when this delivery's {DELIVERY_BUDGET_S:g} s budget ran out" if deadline == budget
                          else f"after {PROCESSING_WAIT_S:g} s")
                raise Transient(f"Opsgenie: {action} of alias {alias} still processing {waited} "
                                f"(requestId {request_id}); will retry")
            self.http.sleep(pause)
            pause = min(pause * 2, 1.0)

    def _note(self, record: dict[str, Any], ref: dict[str, Any] | None, deadline: float) -> dict[str, Any] | None:
        """A rollback of an incident it paged for: a note on that alert (Opsgenie has no change
        events), open or closed, under the alias it was paged with; queued under the incident's
        key (monitor/cycle/receivers.py), so never before the create it notes."""
        # the incident's ref as now delivered: an escalation past a lapsed ack sent ahead of it
        # closed the alert the record named and paged a new one (`<key>~2`), the one on-call has
        paged = (ref or {}).get("dedup_key") or record["incident_dedup_key"]
        alias = quote(str(paged), safe="")
        body = {"source": self.source[:100], "user": str(record.get("actor") or "vigil")[:100],
                "note": rollback_note(record)}
        resp = self.http.post(f"{self.base}/{alias}/notes?identifierType=alias", body,
                              {"Authorization": f"GenieKey {self.api_key.read()}"}, explain, deadline=deadline)
        log.info("opsgenie note accepted", extra={"receiver": self.name, "alias": paged,
                                                 "request_id": _request_id(resp)})
        return ref

    def _request(self, record: dict[str, Any], action: str) -> tuple[str, dict[str, Any]]:
        if action == "create":
            return self.base, opsgenie_create(record, source=self.source, responders=self.responders)
        alias = quote(record["dedup_key"], safe="")
        if action == "priority":
            return (f"{self.base}/{alias}/priority?identifierType=alias",
                    {"priority": OPSGENIE_PRIORITY.get(record["severity"], "P3")})
        return f"{self.base}/{alias}/{action}?identifierType=alias", opsgenie_action(record, action,
                                                                                      source=self.source)


def _request_id(resp: httpx.Response) -> str:
    try:
        doc = resp.json()
    except ValueError:
        return ""
    return str(doc.get("requestId") or "") if isinstance(doc, dict) else ""
