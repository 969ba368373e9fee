"""Fake Tempo: /api/search, /api/traces/{id} (v1, `batches`, base64 ids), /ready.

Per the contract: search answers hex ids, uint64 as strings, zero fields omitted, and a
trace ID without its leading zeros, as Tempo writes it (`pkg/util/traceid.go`
TraceIDToHexString; span IDs keep 16 digits); trace-by-id takes an ID with or without
them (left-padded, HexStringToTraceID) and answers gogo-jsonpb OTLP with base64 ids,
or 404 with an empty body; an
invalid TraceQL query is a plain-text 400 `invalid TraceQL query: ...`. The TraceQL
understood is `{}` or `{ resource.service.name = "x" }` / `{ name = "op" }` /
`{ status = error }`; that is enough to test the client's handling of answers.

With `tenant` set the spans are that tenant's, as in a Tempo with `multitenancy_enabled`:
a request without `X-Scope-OrgID` is 401 `no org id` (dskit's auth middleware), and one
for another tenant sees that tenant's data (none here).
"""
from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from typing import Any

from . import FakeServer

# Strings are Go-quoted, as TraceQL's lexer reads them: \" and \\ are escapes, a bare " ends one.
_Q = re.compile(r'^\{\s*(?:(resource\.service\.name|name)\s*=\s*"((?:[^"\\]|\\.)*)"|(status)\s*=\s*(error|ok)|)\s*\}$',
                re.DOTALL)


@dataclass
class FakeSpan:
    trace_id: str  # hex
    span_id: str  # hex
    parent_id: str | None
    service: str
    name: str
    start_ns: int
    end_ns: int
    error: bool = False
    attributes: dict[str, Any] = field(default_factory=dict)


def _b64(hex_id: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_id)).decode()


def _attr(k: str, v: Any) -> dict:
    if isinstance(v, bool):
        return {"key": k, "value": {"boolValue": v}}
    if isinstance(v, int):
        return {"key": k, "value": {"intValue": str(v)}}
    return {"key": k, "value": {"stringValue": str(v)}}


class FakeTempo(FakeServer):
    def __init__(self, spans: list[FakeSpan], tenant: str | None = None) -> None:
        super().__init__()
        self.spans = spans
        self.tenant = tenant

    def route(self, path, q, headers):
        if path == "/ready":
            return self.text(200, "ready") if self.ready else self.text(503, "not ready")
        if self.tenant is not None and not headers.get("X-Scope-OrgID"):
            return self.text(401, "no org id")
        other_tenant = self.tenant is not None and headers.get("X-Scope-OrgID") != self.tenant
        if other_tenant and path == "/api/search":
            return self.json({"traces": [], "metrics": {}})  # another tenant's data: none here
        if path == "/api/search":
            return self._search(q)
        if path.startswith("/api/traces/"):
            tid = path.rsplit("/", 1)[-1].lower()
            if not re.fullmatch(r"[0-9a-f]{1,32}", tid):
                return self.text(400, f"invalid trace id: {tid[:40]}")
            return (404, "", "text/plain") if other_tenant else self._trace(tid.rjust(32, "0"))
        return self.text(404, "404 page not found")

    def _search(self, q):
        query = q.get("q", "{}")
        m = _Q.match(query.strip())
        if not m:
            return self.text(400, f"invalid TraceQL query: parse error at line 1, col 1: syntax error: {query[:40]}")
        try:
            value = json.loads(f'"{m.group(2)}"') if m.group(2) is not None else None
        except ValueError:
            return self.text(400, f"invalid TraceQL query: parse error at line 1: invalid escape in {query[:40]}")
        limit = int(q.get("limit", "20"))
        start, end = int(q.get("start", "0")), int(q.get("end", str(2**62)))
        traces: dict[str, list[FakeSpan]] = {}
        for s in self.spans:
            traces.setdefault(s.trace_id, []).append(s)
        out = []
        for tid, spans in traces.items():
            t0, t1 = min(s.start_ns for s in spans), max(s.end_ns for s in spans)
            if t1 / 1e9 < start or t0 / 1e9 > end:
                continue
            if m.group(1) == "resource.service.name":
                matched = [s for s in spans if s.service == value]
            elif m.group(1) == "name":
                matched = [s for s in spans if s.name == value]
            elif m.group(3):
                matched = [s for s in spans if s.error == (m.group(4) == "error")]
            else:
                matched = spans
            if not matched:
                continue
            root = next((s for s in spans if s.parent_id is None), spans[0])
            item: dict[str, Any] = {"traceID": tid.lstrip("0"),  # Tempo drops a trace ID's leading zeros
                                    "rootServiceName": root.service, "rootTraceName": root.name,
                                    "startTimeUnixNano": str(t0),
                                    "spanSets": [{"spans": [{"spanID": s.span_id, "startTimeUnixNano": str(s.start_ns),
                                                             "durationNanos": str(s.end_ns - s.start_ns)}
                                                            for s in matched[:3]], "matched": len(matched)}]}
            dur_ms = (t1 - t0) // 1_000_000
            if dur_ms:
                item["durationMs"] = dur_ms  # jsonpb omits zero values
            out.append(item)
        return self.json({"traces": out[:limit], "metrics": {"inspectedBytes": "1000", "totalBlocks": 1}})

    def _trace(self, tid: str):
        spans = [s for s in self.spans if s.trace_id == tid]
        if not spans:
            return 404, "", "text/plain"
        batches: dict[str, list[dict]] = {}
        for s in spans:
            d: dict[str, Any] = {"traceId": _b64(s.trace_id), "spanId": _b64(s.span_id), "name": s.name,
                                 "kind": "SPAN_KIND_SERVER", "startTimeUnixNano": str(s.start_ns),
                                 "endTimeUnixNano": str(s.end_ns),
                                 "attributes": [_attr(k, v) for k, v in s.attributes.items()]}
            if s.parent_id:
                d["parentSpanId"] = _b64(s.parent_id)
            d["status"] = {"code": "STATUS_CODE_ERROR", "message": "failed"} if s.error else {}
            batches.setdefault(s.service, []).append(d)
        return self.json({"batches": [
            {"resource": {"attributes": [_attr("service.name", svc)]},
             "scopeSpans": [{"scope": {"name": "fake"}, "spans": sp}]} for svc, sp in batches.items()]})
