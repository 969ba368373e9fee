"""A Prometheus-compatible query API (Thanos, Mimir, a VictoriaMetrics cluster) over HTTP on
127.0.0.1 that can answer 200 and say its answer is partial: a store or storage node did not
answer. A real Prometheus cannot be made to do that, so this one serves the curves of a
`StubPrometheus` (tests/helpers_vigil.py) through the real wire format, and `partial` is what
it adds to each answer while set:

- Thanos, Mimir/Cortex: `{"warnings": ["..."]}` next to `data`;
- VictoriaMetrics cluster: `{"isPartial": true}` (its vmselect sets it on every answer,
  `false` when whole: app/vmselect/prometheus/query_range_response.qtpl).
"""
from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlparse

from tests.fakes.local_http import LocalHTTPServer
from tests.helpers_vigil import StubPrometheus

THANOS = {"warnings": ["fetch series for {__name__=\"clicks_total\"}: store 10.0.3.7:10901: rpc error: "
                       "code = Unavailable desc = connection refused"]}
VICTORIA = {"isPartial": True}


class PartialPrometheus:
    """`with PartialPrometheus(stub) as p:` serves `stub` at `p.url`; set `p.partial` to one of
    THANOS or VICTORIA (None: whole answers) at any time."""

    def __init__(self, stub: StubPrometheus) -> None:
        self.stub, self.partial = stub, None
        self.answers = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                url = urlparse(self.path)
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
                q = {k: v[0] for k, v in parse_qs(url.query if self.command == "GET" else raw).items()}
                body = outer.answer(url.path, q)
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer

            def log_message(self, *args: object) -> None:
                pass

        self.http = LocalHTTPServer(Handler)
        self.url = self.http.url

    def answer(self, path: str, q: dict[str, str]) -> dict[str, Any]:
        self.answers += 1
        result: list[dict[str, Any]] = []
        if path.endswith("/query_range"):
            for s in self.stub.query_range(q["query"], float(q["start"]), float(q["end"]), float(q["step"])):
                result.append({"metric": s.labels, "values": [[float(t), repr(float(v))]
                                                              for t, v in zip(s.timestamps, s.values, strict=True)]})
        body: dict[str, Any] = {"status": "success", "data": {"resultType": "matrix", "result": result}}
        if "isPartial" in (self.partial or {}):
            body = {"status": "success", "isPartial": True, "data": body["data"]}
        elif self.partial:
            body.update(self.partial)
        return body

    def __enter__(self) -> PartialPrometheus:
        self.http.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.stop()
