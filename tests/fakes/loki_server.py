"""Fake Loki: /loki/api/v1/query_range for log (stream) queries, and /ready.

Follows the contract: start inclusive, end exclusive, ns or float-second times, `limit`
entries at most (a `limit` above the tenant's `max_entries_limit_per_query`, default 5000,
is a 400: `pkg/validation/limits.go` ErrMaxEntriesLimit), `direction` forward|backward
(default backward), values as ["<ns string>", "line"], plain-text 400 errors, X-Scope-OrgID
required when `tenant` is set. An entry's structured metadata is answered as Loki does
(`pkg/util/marshal/query.go` encodeStream): folded into its stream's labels (entries with
other metadata are other streams), unless the request's `X-Loki-Response-Encoding-Flags`
names `categorize-labels`; then each value has a third element `{"structuredMetadata":
{...}}` (`{}` without any), and `data.encodingFlags` says so. The LogQL understood is a
stream selector of exact matchers, optionally followed by `|= "text"` line filters; anything
else is a parse error.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from . import FakeServer

# A string is Go-quoted, as LogQL's lexer reads it: \" and \\ are escapes, a bare " ends it.
_STRING = r'"((?:[^"\\]|\\.)*)"'
_SELECTOR = re.compile(r'^\s*\{(?P<m>(?:[^{}"]|' + _STRING + r')*)\}(?P<rest>.*)$', re.DOTALL)
_MATCHER = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*' + _STRING + r'\s*(?:,|$)')
_FILTER = re.compile(r'\s*\|=\s*' + _STRING)
CATEGORIZE = "categorize-labels"


def unquote(text: str) -> str:
    """The value of a Go-quoted string's body (what Loki's and Tempo's lexers make of it)."""
    return json.loads(f'"{text}"')


def _matchers(text: str) -> dict[str, str] | None:
    """label -> value of a selector's matchers, or None when they do not parse."""
    out: dict[str, str] = {}
    pos = 0
    while pos < len(text):
        m = _MATCHER.match(text, pos)
        if not m:
            return None if text[pos:].strip() else out
        try:
            out[m.group(1)] = unquote(m.group(2))
        except ValueError:  # an escape Go does not know
            return None
        pos = m.end()
    return out


@dataclass
class Stream:
    labels: dict[str, str]
    entries: list[tuple[int, str, dict[str, str]]] = field(default_factory=list)  # (ns, line, metadata)


def _time_ns(v: str | None, default: int) -> int:
    if v is None or v == "":
        return default
    if re.fullmatch(r"\d{16,}", v):
        return int(v)
    return int(float(v) * 1e9)


class FakeLoki(FakeServer):
    def __init__(self, streams: list[Stream], tenant: str | None = None, max_entries: int = 5000) -> None:
        super().__init__()
        self.streams = streams
        self.tenant = tenant
        self.max_entries = max_entries  # limits_config.max_entries_limit_per_query (0: none)

    def route(self, path, q, headers):
        if path == "/ready":
            return self.text(200, "ready") if self.ready else self.text(503, "Ingester not ready")
        if path != "/loki/api/v1/query_range":
            return self.text(404, "404 page not found")
        if self.tenant is not None and headers.get("X-Scope-OrgID") != self.tenant:
            return self.text(400, "no org id")  # Loki's answer to a missing tenant
        query = q.get("query", "")
        m = _SELECTOR.match(query)
        if not m:
            return self.text(400, f"parse error at line 1, col 1: syntax error: unexpected {query[:1]!r}")
        matchers = _matchers(m.group("m"))
        if matchers is None:
            return self.text(400, f"parse error at line 1, col 2: syntax error: unexpected {m.group('m')[:40]!r}")
        rest = m.group("rest")
        filters = [unquote(f) for f in _FILTER.findall(rest)]
        if _FILTER.sub("", rest).strip():
            col = len(query) - len(rest) + 1
            return self.text(400, f"parse error at line 1, col {col}: syntax error: unexpected IDENTIFIER")
        start = _time_ns(q.get("start"), 0)
        end = _time_ns(q.get("end"), 2**63 - 1)
        limit = int(q.get("limit", "100"))
        if self.max_entries and limit > self.max_entries:
            return self.text(400, "max entries limit per query exceeded, limit > max_entries_limit_per_query "
                                  f"({limit} > {self.max_entries})")
        forward = q.get("direction", "backward") == "forward"
        picked = []
        for s in self.streams:
            if any(s.labels.get(k) != v for k, v in matchers.items()):
                continue
            for ns, line, meta in s.entries:
                if start <= ns < end and all(f in line for f in filters):
                    picked.append((ns, line, meta, s))
        picked.sort(key=lambda e: e[0], reverse=not forward)
        picked = picked[:limit]
        flags = {f.strip() for f in headers.get("X-Loki-Response-Encoding-Flags", "").split(",")}
        categorize = CATEGORIZE in flags
        by_stream: dict[tuple, dict] = {}
        for ns, line, meta, s in picked:
            labels = s.labels if categorize else {**s.labels, **meta}
            d = by_stream.setdefault(tuple(sorted(labels.items())), {"stream": labels, "values": []})
            if categorize:
                d["values"].append([str(ns), line, {"structuredMetadata": meta} if meta else {}])
            else:
                d["values"].append([str(ns), line])
        data: dict = {"resultType": "streams", "result": list(by_stream.values()),
                      "stats": {"summary": {"execTime": 0}}}
        if categorize:
            data["encodingFlags"] = [CATEGORIZE]
        return self.json({"status": "success", "data": data})
