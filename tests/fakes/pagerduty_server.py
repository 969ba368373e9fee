"""A local PagerDuty Events API v2 server for tests, following PagerDuty's documented
contract (developer docs, "Send an Alert Event", "Response Codes & Retry Logic",
"Events API Rate Limits"):

- POST /v2/enqueue, JSON {routing_key, event_action, dedup_key, payload, links, images,
  client, client_url}. `routing_key` is the 32-character integration key;
  `event_action` is trigger | acknowledge | resolve; `dedup_key` at most 255 characters;
  a trigger needs payload.summary (<= 1024), payload.source and payload.severity
  (critical | error | warning | info). Payloads are limited to 512 KB.
- 202 {"status": "success", "message": "Event processed", "dedup_key": ...}.
- 400 {"status": "invalid event", "message": "Event object is invalid", "errors": [...]}
  for a malformed event (not retried by a client).
- 429 when an integration key sends more than `per_minute` events (PD: about 120 a minute
  per key, over a 60 s window looking back); the event is not ingested. The fake adds an
  integer Retry-After (PD documents none; the client must also cope without it).
- Deduplication: events for a dedup_key apply to the open alert with that key and that
  routing key; a trigger on an open alert adds a log entry (no new alert), after the
  alert is resolved a trigger opens a new alert, and acknowledge/resolve with no open
  alert are dropped (still 202). An acknowledged alert stays acknowledged on a new trigger.
- POST /v2/change/enqueue (Change Events): {routing_key, payload: {summary (<= 1024),
  source, timestamp, custom_details}, links}; 202 {"status": "success", "message": "Change
  event processed"}; the same 400 body for a malformed one and the same rate limit. Kept
  in `changes`; no dedup key: each accepted one is a change on the service's timeline.
- Faults on demand: `force(status, count=N, retry_after=None, path=None)` answers the next
  N requests (to `path` only, when given) with `status` before anything else (nothing
  ingested); `clear_faults()` drops those not yet used.

`alerts()` lists every alert ever opened with its state and log; `events` every accepted
event. Binds 127.0.0.1 on a free port; `with FakePagerDuty() as pd:`, `pd.url`.
"""
from __future__ import annotations

import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.json_api import Answer, JsonApiServer

MAX_BYTES = 512 * 1024
SEVERITIES = {"critical", "error", "warning", "info"}
ACTIONS = {"trigger", "acknowledge", "resolve"}


@dataclass
class PdAlert:
    routing_key: str
    dedup_key: str
    status: str  # triggered | acknowledged | resolved
    severity: str
    summary: str
    log: list[dict[str, Any]] = field(default_factory=list)  # every event applied, in order


class FakePagerDuty(JsonApiServer):
    def __init__(self, *, per_minute: int = 120, clock: Any = time.monotonic) -> None:
        self.per_minute, self.clock = per_minute, clock
        super().__init__()
        self._alerts: list[PdAlert] = []
        self.events: list[dict[str, Any]] = []
        self.changes: list[dict[str, Any]] = []  # every accepted change event
        self.requests = 0
        self._sent: dict[str, deque[float]] = {}

    def alerts(self) -> list[PdAlert]:
        with self.lock:
            return list(self._alerts)

    # ------------------------------------------------------------------ the contract
    def answer(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
        with self.lock:
            self.requests += 1
            if (fault := self.take_fault(path)) is not None:
                status, retry_after = fault
                return status, _fault_body(status), {"Retry-After": retry_after} if retry_after else {}
            if method != "POST" or path not in ("/v2/enqueue", "/v2/change/enqueue"):
                return 404, {"status": "not found", "message": f"no route {path}"}, {}
            if len(body) > MAX_BYTES:
                return 400, _invalid([f"Event payload is larger than {MAX_BYTES} bytes"]), {}
            try:
                event = json.loads(body)
            except ValueError:
                return 400, _invalid(["Event is not valid JSON"]), {}
            if path == "/v2/change/enqueue":
                return self._change(event)
            errors = validate(event)
            if errors:
                return 400, _invalid(errors), {}
            if self._throttled(event["routing_key"]):
                return 429, _fault_body(429), {"Retry-After": "1"}
            key = event.get("dedup_key") or f"generated-{len(self.events)}"
            self.events.append(event)
            self._apply(event, key)
            return 202, {"status": "success", "message": "Event processed", "dedup_key": key}, {}

    def _change(self, event: Any) -> Answer:
        errors = validate_change(event)
        if errors:
            return 400, _invalid(errors), {}
        if self._throttled(event["routing_key"]):
            return 429, _fault_body(429), {"Retry-After": "1"}
        self.changes.append(event)
        return 202, {"status": "success", "message": "Change event processed"}, {}

    def _throttled(self, routing_key: str) -> bool:
        now = self.clock()
        sent = self._sent.setdefault(routing_key, deque())
        while sent and now - sent[0] >= 60.0:
            sent.popleft()
        if len(sent) >= self.per_minute:
            return True
        sent.append(now)
        return False

    def _apply(self, event: dict[str, Any], key: str) -> None:
        action, rk = event["event_action"], event["routing_key"]
        current = next((a for a in self._alerts if a.routing_key == rk and a.dedup_key == key
                        and a.status != "resolved"), None)
        if action == "trigger":
            if current is None:
                p = event["payload"]
                current = PdAlert(rk, key, "triggered", p["severity"], p["summary"])
                self._alerts.append(current)
            current.log.append(event)
            return
        if current is None:
            return  # documented: dropped
        current.log.append(event)
        current.status = "acknowledged" if action == "acknowledge" else "resolved"


def _routing_key_errors(event: dict[str, Any]) -> list[str]:
    rk = event.get("routing_key")
    return [] if isinstance(rk, str) and len(rk) == 32 else \
        ["Length of 'routing_key' is incorrect (should be 32 characters)"]


def _summary_errors(p: dict[str, Any]) -> list[str]:
    if not p.get("summary"):
        return ["'payload.summary' is missing or blank"]
    return ["'payload.summary' is longer than 1024 characters"] if len(p["summary"]) > 1024 else []


def validate(event: Any) -> list[str]:
    if not isinstance(event, dict):
        return ["Event object is not a JSON object"]
    errors = _routing_key_errors(event)
    if event.get("event_action") not in ACTIONS:
        errors.append("'event_action' is invalid (must be one of the following: 'trigger', 'acknowledge' or "
                      "'resolve')")
    key = event.get("dedup_key")
    if key is not None and (not isinstance(key, str) or len(key) > 255):
        errors.append("'dedup_key' must be a string of at most 255 characters")
    if event.get("event_action") == "trigger":
        p = event.get("payload")
        if not isinstance(p, dict):
            return [*errors, "'payload' is missing or not an object"]
        errors += _summary_errors(p)
        if not p.get("source"):
            errors.append("'payload.source' is missing or blank")
        if p.get("severity") not in SEVERITIES:
            errors.append("'payload.severity' is invalid (must be one of the following: 'critical', 'error', "
                          "'warning' or 'info')")
    elif event.get("event_action") in ("acknowledge", "resolve") and not key:
        errors.append("'dedup_key' is required for acknowledge and resolve events")
    return errors


def validate_change(event: Any) -> list[str]:
    if not isinstance(event, dict):
        return ["Event object is not a JSON object"]
    errors = _routing_key_errors(event)
    p = event.get("payload")
    if not isinstance(p, dict):
        return [*errors, "'payload' is missing or not an object"]
    errors += _summary_errors(p)
    if "custom_details" in p and not isinstance(p["custom_details"], dict):
        errors.append("'payload.custom_details' must be an object")
    return errors


def _invalid(errors: list[str]) -> dict[str, Any]:
    return {"status": "invalid event", "message": "Event object is invalid", "errors": errors}


def _fault_body(status: int) -> dict[str, Any]:
    if status == 429:
        return {"status": "throttle event", "message": "Requests for this service are arriving too quickly. "
                                                      "Please retry later."}
    if status == 400:
        return _invalid(["injected"])
    return {"status": "error", "message": f"injected {status}"}
