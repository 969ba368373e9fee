"""What the pager fakes (PagerDuty, Opsgenie) share: a JSON HTTP/1.1 server on 127.0.0.1,
started and stopped by `with`, and faults on demand (`force(status, count, retry_after)`
answers the next `count` requests with `status` before anything else). Each fake keeps
its own contract in `answer(method, target, headers, body)`.
"""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.fakes.local_http import LocalHTTPServer

Answer = tuple[int, dict[str, Any], dict[str, str]]  # status, JSON body, extra headers


class JsonApiServer:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._faults: list[list[Any]] = []  # [status, count, retry_after, path]
        handler = type("Handler", (_Handler,), {"api": self})
        self._http = LocalHTTPServer(handler)

    def __enter__(self) -> Any:
        self._http.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.stop()

    @property
    def url(self) -> str:
        return self._http.url

    def force(self, status: int, count: int = 1, retry_after: str | None = None, path: str | None = None) -> None:
        """`path`: only requests whose path contains it (PagerDuty's change endpoint, Opsgenie's
        `/notes`); None: any."""
        with self.lock:
            self._faults.append([status, count, retry_after, path])

    def clear_faults(self) -> None:
        with self.lock:
            self._faults.clear()

    def take_fault(self, path: str = "") -> tuple[int, str | None] | None:
        """The next forced answer (status, Retry-After) for a request to `path`, if any; call
        with `lock` held."""
        fault = next((f for f in self._faults if f[3] is None or f[3] in path), None)
        if fault is None:
            return None
        status, _, retry_after, _ = fault
        fault[1] -= 1
        if fault[1] <= 0:
            self._faults.remove(fault)
        return status, retry_after

    def answer(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Answer:
        raise NotImplementedError


class _Handler(BaseHTTPRequestHandler):
    api: JsonApiServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, doc, extra = self.api.answer(method, self.path, headers, body)
        data = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in extra.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")
