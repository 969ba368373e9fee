"""A local Opsgenie Alert API server for tests, following Opsgenie's documented contract
(Alert API: create, acknowledge, close, update priority, get, get request status;
authentication; rate limiting):

- Every request needs `Authorization: GenieKey <key>` with the key given at start:
  without it or with another, 401/403 {"message": ..., "took", "requestId"}.
- POST /v2/alerts {message (required, <= 130 chars), alias (<= 512), description
  (<= 15000), responders, tags (at most 20, each <= 50 chars), details (string values),
  entity (<= 512), source (<= 100), priority (P1..P5, default P3), user, note}. Validation errors are 422
  {"message": "Request body is not processable. Please check the errors.", "errors":
  {field: reason}, "took", "requestId"}; a body that is not JSON is 400.
- Accepted requests are 202 {"result": "Request will be processed", "took",
  "requestId"} and processed asynchronously: here after `processing_delay_s` (0: at once;
  `delay_next(s)` gives the next accepted request its own delay, so a later request can be
  processed first), in the order they come due; GET /v2/alerts/requests/{requestId} tells
  how it went ({"data": {"isSuccess", "status", "alertId", "alias", "action"}}) and is
  404 until it is processed. `fail_next(count, status)`: the next accepted requests are
  processed as failures (isSuccess false, that status, nothing changed). An API integration
  can be made without read access (`read_access=False`): every GET is then 403.
  A create whose alias matches an open alert is de-duplicated: that alert's `count` goes up, no new alert.
- POST /v2/alerts/{identifier}/acknowledge|close?identifierType=id|alias|tiny
  ({user, source, note}): 202 likewise; the request fails (isSuccess false, "Alert does
  not exist") when no open alert has that identifier.
- POST /v2/alerts/{identifier}/notes?identifierType=... ({note (required, <= 25000), user,
  source}): 202 likewise; an open or closed alert takes the note, none: isSuccess false.
- GET /v2/alerts/{identifier}?identifierType=...: 200 {"data": {...}} or 404.
- 429 {"message": "You are making too many requests! ...", "took", "requestId"} with
  X-RateLimit-State: THROTTLED past `per_minute` requests per key in a minute, and an
  integer Retry-After (Opsgenie documents the headers, not a wait: clients back off).
- Faults on demand: `force(status, count=N, retry_after=None, path=None)` (tests/fakes/json_api.py).

`alerts()` lists every alert ever created. Binds 127.0.0.1 on a free port;
`with FakeOpsgenie("key") as og:`, `og.url`.
"""
from __future__ import annotations

import itertools
import json
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.fakes.json_api import Answer, JsonApiServer

LIMITS = {"message": 130, "alias": 512, "description": 15000, "entity": 512, "source": 100}
PRIORITIES = {"P1", "P2", "P3", "P4", "P5"}
MAX_TAGS, MAX_TAG_CHARS = 20, 50  # docs.opsgenie.com "Alerts and alert fields": 20 tags x 50 characters


@dataclass
class OgAlert:
    id: str
    tiny_id: str
    alias: str
    message: str
    priority: str
    status: str = "open"  # open | closed
    acknowledged: bool = False
    count: int = 1
    body: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


class FakeOpsgenie(JsonApiServer):
    def __init__(self, api_key: str, *, per_minute: int = 600, clock: Any = time.monotonic,
                 processing_delay_s: float = 0.0, read_access: bool = True) -> None:
        self.api_key, self.per_minute, self.clock = api_key, per_minute, clock
        self.read_access = read_access  # an API integration's "Read Access" box: off, every GET is 403
        self.processing_delay_s = processing_delay_s
        super().__init__()
        self._queue: list[tuple[float, int, str, str, Callable[[], None]]] = []  # (due, seq, rid, action, apply)
        self._delays: deque[float] = deque()
        self._failures: deque[str] = deque()
        self._seq = itertools.count()
        self._alerts: list[OgAlert] = []
        self.requests_status: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, str, dict[str, Any]]] = []  # (method, path, body) of accepted requests
        self._sent: deque[float] = deque()

    def alerts(self) -> list[OgAlert]:
        with self.lock:
            self._process_due()
            return list(self._alerts)

    def delay_next(self, seconds: float, count: int = 1) -> None:
        """The next `count` accepted requests are processed `seconds` after they are accepted."""
        with self.lock:
            self._delays.extend([seconds] * count)

    def fail_next(self, count: int = 1, status: str = "Could not process the request") -> None:
        """The next `count` accepted requests fail when processed (isSuccess false)."""
        with self.lock:
            self._failures.extend([status] * count)

    def _accept(self, rid: str, action: str, apply: Callable[[], None]) -> tuple[int, dict[str, Any], dict[str, str]]:
        """202 now; `apply` (which records the request's status) once it comes due."""
        delay = self._delays.popleft() if self._delays else self.processing_delay_s
        failure = self._failures.popleft() if self._failures else None
        run = apply if failure is None else lambda: self._status(rid, action, False, failure, None)
        self._queue.append((self.clock() + delay, next(self._seq), rid, action, run))
        self._process_due()
        return 202, _accepted(rid), {}

    def _process_due(self) -> None:
        now = self.clock()
        due = sorted(q for q in self._queue if q[0] <= now)
        self._queue = [q for q in self._queue if q[0] > now]
        for _, _, _, _, apply in due:
            apply()

    # ------------------------------------------------------------------ the contract
    def answer(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Answer:
        rid = str(uuid.uuid4())
        with self.lock:
            if (fault := self.take_fault(target.split("?")[0])) is not None:
                status, retry_after = fault
                extra = {"Retry-After": retry_after} if retry_after else {}
                if status == 429:
                    extra["X-RateLimit-State"] = "THROTTLED"
                return status, _error(f"injected {status}", rid), extra
            auth = headers.get("authorization", "")
            if not auth.startswith("GenieKey "):
                return 401, _error("Could not authenticate", rid), {}
            if auth[len("GenieKey "):] != self.api_key:
                return 403, _error("You are not authorized for this operation", rid), {}
            self._process_due()
            if self._throttled():
                return 429, _error("You are making too many requests! To avoid errors, we recommend you limit "
                                   "requests.", rid), {"X-RateLimit-State": "THROTTLED", "Retry-After": "1"}
            return self._route(method, target, body, rid)

    def _throttled(self) -> bool:
        now = self.clock()
        while self._sent and now - self._sent[0] >= 60.0:
            self._sent.popleft()
        if len(self._sent) >= self.per_minute:
            return True
        self._sent.append(now)
        return False

    def _route(self, method: str, target: str, body: bytes, rid: str) -> tuple[int, dict[str, Any], dict[str, str]]:
        parts = urlsplit(target)
        path, query = parts.path, parse_qs(parts.query)
        id_type = (query.get("identifierType") or ["id"])[0]
        segs = [unquote(s) for s in path.strip("/").split("/")]
        if method == "GET" and not self.read_access:
            return 403, _error("You are not authorized for this operation", rid), {}
        if method == "GET" and segs[:3] == ["v2", "alerts", "requests"] and len(segs) == 4:
            st = self.requests_status.get(segs[3])
            if st is None:  # unknown, or not processed yet
                return 404, _error(f"Request with id [{segs[3]}] does not exist", rid), {}
            return 200, {"data": st, "took": 0.001, "requestId": rid}, {}
        if method == "GET" and segs[:2] == ["v2", "alerts"] and len(segs) == 3:
            a = self._find(segs[2], id_type, open_only=False)
            if a is None:
                return 404, _error(f"Alert with {id_type} [{segs[2]}] does not exist!", rid), {}
            return 200, {"data": _show(a), "took": 0.001, "requestId": rid}, {}
        if method == "PUT" and segs[:2] == ["v2", "alerts"] and len(segs) == 4 and segs[3] == "priority":
            return self._priority(segs[2], id_type, body, rid)
        if method != "POST" or segs[:2] != ["v2", "alerts"]:
            return 404, _error(f"no route {method} {path}", rid), {}
        try:
            doc = json.loads(body or b"{}")
        except ValueError:
            return 400, _error("Could not parse the request body as JSON", rid), {}
        if not isinstance(doc, dict):
            return 400, _error("The request body must be a JSON object", rid), {}
        if len(segs) == 2:
            return self._create(doc, rid)
        if len(segs) == 4 and segs[3] in ("acknowledge", "close"):
            return self._act(segs[2], id_type, segs[3], doc, rid)
        if len(segs) == 4 and segs[3] == "notes":
            return self._note(segs[2], id_type, doc, rid)
        return 404, _error(f"no route POST {path}", rid), {}

    def _create(self, doc: dict[str, Any], rid: str) -> tuple[int, dict[str, Any], dict[str, str]]:
        errors = validate_create(doc)
        if errors:
            return 422, {"message": "Request body is not processable. Please check the errors.", "errors": errors,
                         "took": 0.001, "requestId": rid}, {}
        self.calls.append(("POST", "/v2/alerts", doc))
        alias = doc.get("alias") or str(uuid.uuid4())

        def apply() -> None:
            current = self._find(alias, "alias", open_only=True)
            if current is not None:
                current.count += 1
            else:
                n = len(self._alerts) + 1
                current = OgAlert(str(uuid.uuid4()), str(n), alias, doc["message"], doc.get("priority") or "P3",
                                  body=doc)
                self._alerts.append(current)
            self._status(rid, "Create", True, "Created alert", current)
        return self._accept(rid, "Create", apply)

    def _act(self, ident: str, id_type: str, action: str, doc: dict[str, Any],
             rid: str) -> tuple[int, dict[str, Any], dict[str, str]]:
        self.calls.append(("POST", f"/v2/alerts/{ident}/{action}", doc))

        def apply() -> None:
            a = self._find(ident, id_type, open_only=True)
            if a is None:
                self._status(rid, action.capitalize(), False, "Alert does not exist", None, alias=ident)
                return
            if action == "acknowledge":
                a.acknowledged = True
            else:
                a.status = "closed"
            if doc.get("note"):
                a.notes.append(str(doc["note"]))
            self._status(rid, action.capitalize(), True, f"{action.capitalize()}d alert", a)
        return self._accept(rid, action.capitalize(), apply)

    def _note(self, ident: str, id_type: str, doc: dict[str, Any],
              rid: str) -> tuple[int, dict[str, Any], dict[str, str]]:
        """`POST /v2/alerts/{identifier}/notes` {note (required, <= 25000), user, source}: 202,
        processed async; an open or closed alert takes it."""
        note = str(doc.get("note") or "")
        if not note.strip() or len(note) > 25000:
            return 422, {"message": "Request body is not processable. Please check the errors.",
                         "errors": {"note": "Note can not be empty or longer than 25000 characters."},
                         "took": 0.001, "requestId": rid}, {}
        self.calls.append(("POST", f"/v2/alerts/{ident}/notes", doc))

        def apply() -> None:
            a = self._find(ident, id_type, open_only=False)
            if a is None:
                self._status(rid, "AddNote", False, "Alert does not exist", None, alias=ident)
            else:
                a.notes.append(note)
                self._status(rid, "AddNote", True, "Added note", a)
        return self._accept(rid, "AddNote", apply)

    def _priority(self, ident: str, id_type: str, body: bytes, rid: str
                  ) -> tuple[int, dict[str, Any], dict[str, str]]:
        """`PUT /v2/alerts/{identifier}/priority`: {"priority": "P1".."P5"}; 202, processed async."""
        try:
            doc = json.loads(body or b"{}")
        except ValueError:
            return 400, _error("Could not parse the request body as JSON", rid), {}
        if not isinstance(doc, dict) or doc.get("priority") not in PRIORITIES:
            return 422, {"message": "Request body is not processable. Please check the errors.",
                         "errors": {"priority": "Priority should be one of [P1, P2, P3, P4, P5]"},
                         "took": 0.001, "requestId": rid}, {}
        self.calls.append(("PUT", f"/v2/alerts/{ident}/priority", doc))

        def apply() -> None:
            a = self._find(ident, id_type, open_only=True)
            if a is None:
                self._status(rid, "UpdatePriority", False, "Alert does not exist", None, alias=ident)
            else:
                a.priority = str(doc["priority"])
                self._status(rid, "UpdatePriority", True, "Updated priority", a)
        return self._accept(rid, "UpdatePriority", apply)

    def _find(self, ident: str, id_type: str, *, open_only: bool) -> OgAlert | None:
        attr = {"id": "id", "alias": "alias", "tiny": "tiny_id"}.get(id_type, "id")
        found = [a for a in self._alerts if getattr(a, attr) == ident and (a.status == "open" or not open_only)]
        return found[-1] if found else None

    def _status(self, rid: str, action: str, ok: bool, status: str, a: OgAlert | None, alias: str = "") -> None:
        self.requests_status[rid] = {"success": ok, "isSuccess": ok, "action": action, "status": status,
                                     "alertId": a.id if a else "", "alias": a.alias if a else alias,
                                     "processedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def validate_create(doc: dict[str, Any]) -> dict[str, str]:
    errors: dict[str, str] = {}
    if not str(doc.get("message") or "").strip():
        errors["message"] = "Message can not be empty."
    for name, limit in LIMITS.items():
        v = doc.get(name)
        if v is not None and len(str(v)) > limit:
            errors[name] = f"{name.capitalize()} can not be longer than {limit} characters."
    if doc.get("priority") is not None and doc["priority"] not in PRIORITIES:
        errors["priority"] = "Priority should be one of [P1, P2, P3, P4, P5]"
    tags = doc.get("tags")
    if tags is not None and (not isinstance(tags, list) or len(tags) > MAX_TAGS or
                             any(len(str(t)) > MAX_TAG_CHARS for t in tags)):
        errors["tags"] = f"Tags can be at most {MAX_TAGS}, each at most {MAX_TAG_CHARS} characters."
    details = doc.get("details")
    if details is not None and (not isinstance(details, dict) or
                                not all(isinstance(v, str) for v in details.values())):
        errors["details"] = "Details should be a map of strings to strings"
    return errors


def _show(a: OgAlert) -> dict[str, Any]:
    return {"id": a.id, "tinyId": a.tiny_id, "alias": a.alias, "message": a.message, "status": a.status,
            "acknowledged": a.acknowledged, "count": a.count, "priority": a.priority,
            "tags": a.body.get("tags", []), "details": a.body.get("details", {}),
            "entity": a.body.get("entity", ""), "description": a.body.get("description", "")}


def _accepted(rid: str) -> dict[str, Any]:
    return {"result": "Request will be processed", "took": 0.002, "requestId": rid}


def _error(message: str, rid: str) -> dict[str, Any]:
    return {"message": message, "took": 0.001, "requestId": rid}
