"""Small local servers that follow ../shared/contracts/README.md (status codes, error
bodies, pagination, id encodings). They bind 127.0.0.1 on a free port.

`FakeServer` runs a handler in a thread; `faults` is a queue of (status, body) answers, or
(status, body, headers) ones (a 429's Retry-After), served before the normal behaviour, to
test retries and error paths.
"""
from __future__ import annotations

import json
import time
from collections import deque
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.local_http import LocalHTTPServer


class FakeServer:
    def __init__(self) -> None:
        self.faults: deque[tuple[int, str] | tuple[int, str, dict[str, str]]] = deque()
        self.requests: list[dict[str, Any]] = []
        self.ready = True
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def do_GET(self) -> None:  # http.server names its handlers so
                u = urlsplit(self.path)
                q = {k: v[-1] for k, v in parse_qs(u.query, keep_blank_values=True).items()}
                owner.requests.append({"path": u.path, "params": q, "headers": dict(self.headers),
                                       "at": time.monotonic()})
                if owner.faults:
                    status, body, *extra = owner.faults.popleft()
                    return self.reply(status, body, "text/plain; charset=utf-8", *extra)
                status, body, ctype = owner.route(u.path, q, dict(self.headers))
                self.reply(status, body, ctype)

            def reply(self, status: int, body: str | bytes, ctype: str,
                      headers: dict[str, str] | None = None) -> None:
                data = body.encode() if isinstance(body, str) else body
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                if data:
                    self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._http = LocalHTTPServer(Handler)

    @property
    def url(self) -> str:
        return self._http.url

    def route(self, path: str, q: dict[str, str], headers: dict[str, str]) -> tuple[int, str, str]:
        raise NotImplementedError

    @staticmethod
    def json(obj: Any) -> tuple[int, str, str]:
        return 200, json.dumps(obj), "application/json"

    @staticmethod
    def text(status: int, body: str) -> tuple[int, str, str]:
        return status, body, "text/plain; charset=utf-8"

    def __enter__(self) -> FakeServer:
        self._http.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._http.stop()
