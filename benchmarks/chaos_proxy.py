"""A recording HTTP proxy in front of the `mlflow server`, for the chaos benchmark.

The replicas reach MLflow only through it, so it sees every alias move Vigil makes (MLflow
keeps no alias history, and a move to the version the alias already holds leaves no trace
in the registry at all). It forwards each request unchanged to the current server; while
the registry is down (the server stopped for an outage) it answers 502, as a load
balancer in front of a dead MLflow would, and the server may come back on another port.
The benchmark itself writes the scenario's deploys straight to the server, not through
here, so every write recorded is Vigil's.
"""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

ALIAS_ENDPOINT = "registered-models/alias"


@dataclass(frozen=True)
class AliasWrite:
    at: float  # wall clock, when the server answered
    model: str
    alias: str
    version: str
    status: int  # the server's answer; only 200 moved anything


class RegistryProxy:
    """Listens on 127.0.0.1; `upstream` is the server's URL, or None while it is down."""

    def __init__(self, timeout_s: float = 10.0) -> None:
        self.upstream: str | None = None
        self.writes: list[AliasWrite] = []
        self.requests = 0
        self._lock = threading.Lock()
        self._http = httpx.Client(timeout=timeout_s)
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> RegistryProxy:
        handler = type("_Handler", (_Handler,), {"proxy": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                         name="registry-proxy", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self._http.close()

    @property
    def url(self) -> str:
        assert self._server is not None, "RegistryProxy is not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def moves(self) -> list[AliasWrite]:
        """Alias writes the server accepted, in order."""
        with self._lock:
            return [w for w in self.writes if w.status == 200]

    def forward(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes, str]:
        with self._lock:
            self.requests += 1
        upstream = self.upstream
        if upstream is None:
            return _unavailable("the registry is down (chaos: outage)")
        keep = {k: v for k, v in headers.items() if k.lower() in ("content-type", "authorization", "user-agent")}
        try:
            resp = self._http.request(method, upstream + path, headers=keep, content=body)
        except httpx.HTTPError as e:
            return _unavailable(f"upstream unreachable: {type(e).__name__}")
        if method == "POST" and path.split("?", 1)[0].endswith(ALIAS_ENDPOINT):
            self._record(body, resp.status_code)
        return resp.status_code, resp.content, resp.headers.get("content-type", "application/json")

    def _record(self, body: bytes, status: int) -> None:
        try:
            req: dict[str, Any] = json.loads(body or b"{}")
        except ValueError:
            req = {}
        write = AliasWrite(time.time(), str(req.get("name")), str(req.get("alias")), str(req.get("version")),
                           status)
        with self._lock:
            self.writes.append(write)


def _unavailable(message: str) -> tuple[int, bytes, str]:
    body = json.dumps({"error_code": "TEMPORARILY_UNAVAILABLE", "message": message}).encode()
    return 502, body, "application/json"


class _Handler(BaseHTTPRequestHandler):
    proxy: RegistryProxy
    protocol_version = "HTTP/1.1"

    def _relay(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        status, data, ctype = self.proxy.forward(self.command, self.path, dict(self.headers.items()), body)
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting

    do_GET = do_POST = do_PATCH = do_DELETE = _relay  # http.server dispatches on these names

    def log_message(self, format: str, *args: Any) -> None:  # keep the benchmark's output clean
        pass
