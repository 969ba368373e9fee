"""A local receiver for Vigil's signed rollback webhook, for the executor tests.

Contract (what a serving layer's receiver is expected to do):
- POST /rollback, JSON {model, registry_name, from_version, to_version, incident_id,
  idempotency_key, requested_at}. It checks `X-Vigil-Signature: v1=<hex HMAC-SHA256(secret,
  f"{X-Vigil-Timestamp}.{raw body}")>` (compared in constant time) and that the timestamp
  is within `tolerance_s` (300 s) of its clock: otherwise 401 {"error": ...}, nothing done.
  Without `Idempotency-Key`: 400.
- At most once per Idempotency-Key: the first answer for a key is stored, and a replay gets
  that answer again (same status and body, header `Idempotent-Replayed: true`) and changes
  nothing. Acting sets the version it serves to `to_version` and appends to `actions`.
- POST /alerts (Vigil's alert receivers, alerts/receivers/webhook.py), signed and keyed the
  same way: the first delivery of a key is kept in `alerts` and answered 200; a replay gets
  that answer again and keeps nothing.
- GET /serving (the verify URL), signed the same way over an empty body: {"version": ...}.
- Faults on demand, answered before anything else and never stored for a key:
  `fail(503 | 429 | 500 | 400, count=N, retry_after="1")`; `slow_after_act(seconds, count=N)`
  acts, stores the answer, then waits before sending it (the caller's timeout fires, as when
  a response is lost, and its retry must be deduplicated); `report(version)` makes GET
  /serving say `version` whatever was done (a layer where the change did not take effect).
Binds 127.0.0.1 on a free port; `with WebhookReceiver(secret) as hook:`; `hook.url("/rollback")`.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.fakes.local_http import LocalHTTPServer


@dataclass
class Delivery:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int = 0
    replayed: bool = False


@dataclass
class _State:
    serving: str | None
    reported: str | None = None
    actions: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    answers: dict[str, tuple[int, bytes]] = field(default_factory=dict)  # Idempotency-Key -> first answer
    faults: list[list[Any]] = field(default_factory=list)  # [status, count, retry_after]
    slow: list[list[float]] = field(default_factory=list)  # [seconds, count]
    deliveries: list[Delivery] = field(default_factory=list)


class WebhookReceiver:
    def __init__(self, secret: str, *, serving: str | None = None, tolerance_s: float = 300.0) -> None:
        self.secret = secret.encode()
        self.tolerance_s = tolerance_s
        self.clock = time.time
        self.state = _State(serving)
        self.lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"hook": self})
        self._http = LocalHTTPServer(handler)

    def __enter__(self) -> WebhookReceiver:
        self._http.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.stop()

    def url(self, path: str) -> str:
        return f"{self._http.url}{path}"

    # test controls
    def fail(self, status: int, count: int = 1, retry_after: str | None = None) -> None:
        with self.lock:
            self.state.faults.append([status, count, retry_after])

    def slow_after_act(self, seconds: float, count: int = 1) -> None:
        with self.lock:
            self.state.slow.append([seconds, count])

    def report(self, version: str | None) -> None:
        with self.lock:
            self.state.reported = version

    @property
    def actions(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.state.actions)

    @property
    def alerts(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.state.alerts)

    @property
    def deliveries(self) -> list[Delivery]:
        with self.lock:
            return list(self.state.deliveries)

    # the receiver's side of the contract
    def check_signature(self, headers: dict[str, str], body: bytes) -> str | None:
        """None when the request is signed with our secret and recent; else why not."""
        ts, sig = headers.get("x-vigil-timestamp", ""), headers.get("x-vigil-signature", "")
        if not ts.isdigit() or not sig.startswith("v1="):
            return "missing or malformed X-Vigil-Timestamp / X-Vigil-Signature"
        if abs(self.clock() - int(ts)) > self.tolerance_s:
            return f"stale timestamp {ts}"
        want = hmac.new(self.secret, ts.encode() + b"." + body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(want, sig[3:]):
            return "signature does not match"
        return None

    def take(self, queue: list[list[Any]]) -> list[Any] | None:
        if not queue:
            return None
        head = queue[0]
        head[1] -= 1
        if head[1] <= 0:
            queue.pop(0)
        return head

    def answer(self, method: str, path: str, headers: dict[str, str], body: bytes,
               delivery: Delivery) -> tuple[int, bytes, dict[str, str], float]:
        """(status, body, extra headers, seconds to wait before sending)."""
        with self.lock:
            fault = self.take(self.state.faults)
            if fault:
                extra = {"Retry-After": fault[2]} if fault[2] else {}
                return fault[0], _json({"error": f"injected {fault[0]}"}), extra, 0.0
            why = self.check_signature(headers, body)
            if why:
                return 401, _json({"error": why}), {}, 0.0
            if method == "GET" and path == "/serving":
                shown = self.state.reported if self.state.reported is not None else self.state.serving
                return 200, _json({"version": shown}), {}, 0.0
            if method != "POST" or path not in ("/rollback", "/alerts"):
                return 404, _json({"error": f"no route {method} {path}"}), {}, 0.0
            key = headers.get("idempotency-key")
            if not key:
                return 400, _json({"error": "Idempotency-Key is required"}), {}, 0.0
            if key in self.state.answers:
                delivery.replayed = True
                status, data = self.state.answers[key]
                return status, data, {"Idempotent-Replayed": "true"}, 0.0
            doc = json.loads(body)
            if path == "/alerts":
                self.state.alerts.append(doc)
                self.state.answers[key] = (200, _json({"ok": True}))
                return 200, _json({"ok": True}), {}, 0.0
            previous, self.state.serving = self.state.serving, str(doc["to_version"])
            self.state.actions.append({**doc, "previous": previous})
            data = _json({"ok": True, "serving": self.state.serving, "previous": previous})
            self.state.answers[key] = (200, data)
            slow = self.take(self.state.slow)
            return 200, data, {}, float(slow[0]) if slow else 0.0


def _json(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc).encode()


class _Handler(BaseHTTPRequestHandler):
    hook: WebhookReceiver
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        delivery = Delivery(method, self.path, headers, body)
        status, data, extra, wait = self.hook.answer(method, self.path, headers, body, delivery)
        delivery.status = status
        with self.hook.lock:
            self.hook.state.deliveries.append(delivery)
        if wait:
            time.sleep(wait)
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in extra.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the caller gave up waiting
            pass

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")
