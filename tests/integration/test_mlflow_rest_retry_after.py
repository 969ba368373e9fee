"""MLflow (or a proxy before it) answering 429/503 with a Retry-After: the REST backend
waits what it asks when that fits the call's deadline, and gives up at once otherwise
(not retrying sooner than asked, which only draws more 429s)."""
from __future__ import annotations

import json
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pytest

from monitor.sources.errors import SourceUnavailable
from monitor.sources.registry.rest import RestBackend
from tests.fakes.local_http import LocalHTTPServer

MODEL = {"registered_model": {"name": "m", "aliases": [{"alias": "prod", "version": "3"}]}}


class _Throttled(BaseHTTPRequestHandler):
    retry_after = "1"
    throttled = 1
    hits: list[float]

    def do_GET(self) -> None:
        self.hits.append(time.monotonic())
        throttled = len(self.hits) <= self.throttled
        body = b'{"error_code":"REQUEST_LIMIT_EXCEEDED","message":"slow down"}' if throttled else \
            json.dumps(MODEL).encode()
        self.send_response(429 if throttled else 200)
        if throttled:
            self.send_header("Retry-After", self.retry_after)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, type[_Throttled]]]:
    handler = type("Handler", (_Throttled,), {"hits": []})
    with LocalHTTPServer(handler) as http:
        yield http.url, handler


def test_a_short_retry_after_is_waited_out(server: tuple[str, type[_Throttled]]) -> None:
    url, handler = server
    assert RestBackend(url, timeout_s=3).aliases("m") == {"prod": "3"}
    assert len(handler.hits) == 2 and handler.hits[1] - handler.hits[0] >= 0.95


def test_a_retry_after_past_the_deadline_gives_up_at_once(server: tuple[str, type[_Throttled]]) -> None:
    url, handler = server
    handler.retry_after, handler.throttled = "60", 100
    began = time.monotonic()
    with pytest.raises(SourceUnavailable, match="429.*slow down.*Retry-After 60"):
        RestBackend(url, timeout_s=3).aliases("m")
    assert len(handler.hits) == 1 and time.monotonic() - began < 1.0
