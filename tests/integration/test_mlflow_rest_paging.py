"""MLflow's paged searches end when a page carries no next_page_token. A cache or proxy
before MLflow that ignores the query string answers the first page again and again, token
and all: the registry read paged forever and the sweep (every model's cycle) never ended."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler

import pytest

from monitor.sources.errors import SourceUnavailable
from monitor.sources.registry.rest import RestBackend
from tests.fakes.local_http import LocalHTTPServer

PAGE = {"registered_models": [{"name": "m", "aliases": [{"alias": "prod", "version": "3"}]}],
        "next_page_token": "abc"}
VERSIONS = {"model_versions": [{"name": "m", "version": "3", "creation_timestamp": 1795259496163}],
            "next_page_token": "abc"}


class _SamePage(BaseHTTPRequestHandler):
    hits = 0

    def do_GET(self) -> None:
        type(self).hits += 1
        body = json.dumps(VERSIONS if "model-versions" in self.path else PAGE).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize("read", ["all_aliases", "search_versions"])
def test_a_page_token_answered_twice_ends_the_read(read: str) -> None:
    handler = type("Handler", (_SamePage,), {"hits": 0})
    with LocalHTTPServer(handler) as http:
        backend = RestBackend(http.url, timeout_s=2)
        call = backend.all_aliases if read == "all_aliases" else lambda: backend.search_versions("m")
        outcome: list[object] = []
        worker = threading.Thread(target=lambda: outcome.append(_run(call)), daemon=True)
        worker.start()
        worker.join(timeout=5)
        assert not worker.is_alive(), f"still paging after {handler.hits} requests"
    assert isinstance(outcome[0], SourceUnavailable) and "next_page_token" in str(outcome[0]), outcome
    assert handler.hits == 2


def _run(call: object) -> object:
    try:
        return call()  # type: ignore[operator]
    except Exception as e:  # the error is the outcome looked at
        return e
