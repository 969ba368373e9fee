"""Tempo client: TraceQL search and trace-by-id into Span records (hex ids).

Search returns hex ids; trace-by-id returns OTLP JSON under the `batches` key with
base64 ids (gogo jsonpb), which we decode to hex so spans, logs and search results
share one id form. 404 with an empty body means the trace is not there (None).
400 carries a plain-text reason (QueryError); 429/5xx/connection errors are retried
with backoff and then raise SourceUnavailable.
"""
from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from typing import Any

import httpx

from detectors.records import Span
from monitor.config import TempoConfig
from monitor.sources.errors import QueryError
from monitor.sources.http import HttpSource

_SOURCE = "tempo"


@dataclass(frozen=True)
class TraceSummary:
    trace_id: str  # hex
    root_service: str | None
    root_name: str | None
    start_ns: int
    duration_ms: float
    matched_span_ids: list[str] = field(default_factory=list)  # hex


class TraceHits(list[TraceSummary]):
    """A search's traces; `cut`: why more traces may have matched than came back (None: all did)."""

    cut: str | None = None


class TempoSource(HttpSource):
    source = _SOURCE

    def __init__(self, config: TempoConfig, *, client: httpx.Client | None = None,
                 retries: int = 3, backoff_s: float = 0.5, max_backoff_s: float = 8.0) -> None:
        self.config = config
        headers = {"Authorization": f"Bearer {config.bearer_token}"} if config.bearer_token else {}
        if config.tenant:
            headers["X-Scope-OrgID"] = config.tenant
        super().__init__(config.url, config.timeout_s, headers, client=client, retries=retries,
                         backoff_s=backoff_s, max_backoff_s=max_backoff_s)

    def search(self, query: str, start: float, end: float, limit: int | None = None) -> TraceHits:
        """Traces matching a TraceQL query with spans in [start, end] (epoch seconds), at most
        `limit`: a sample when more matched (`TraceHits.cut`)."""
        if end <= start:
            raise ValueError(f"end ({end}) must be after start ({start})")
        limit = limit or self.config.search_limit
        params = {"q": query, "start": int(start), "end": int(end) + (1 if end != int(end) else 0), "limit": limit}
        r = self._get("/api/search", params, query)
        try:
            body = r.json()
            traces = body.get("traces") or []
        except (ValueError, AttributeError):
            raise QueryError(_SOURCE, query, f"unexpected response: {r.text[:200]}") from None
        if not isinstance(traces, list):
            raise QueryError(_SOURCE, query, f"traces: expected a list, got {_show(traces)}")
        out = TraceHits()
        out.cut = search_cut(len(traces), limit, body.get("metrics") or {})
        for i, t in enumerate(traces):
            try:
                out.append(_summary(t))
            except (KeyError, TypeError, ValueError, AttributeError):
                # Named: a raw KeyError was an internal error that blinded the model's logs too.
                raise QueryError(_SOURCE, query, f"traces[{i}]: expected a trace with a hex traceID (and "
                                                 f"spanSets), got {_show(t)}") from None
        return out

    def trace(self, trace_id_hex: str, start: float | None = None, end: float | None = None) -> list[Span] | None:
        """All spans of a trace (hex ids), or None when Tempo does not have it."""
        params: dict[str, Any] = {}
        if start is not None:
            params["start"] = int(start)
        if end is not None:
            params["end"] = int(end) + 1
        r = self._get_or_none(f"/api/traces/{trace_id_hex}", params, trace_id_hex)
        if r is None:
            return None
        try:
            body = r.json()
        except ValueError:
            raise QueryError(_SOURCE, trace_id_hex, f"unexpected response: {r.text[:200]}") from None
        try:
            return spans_from_otlp(body)
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise QueryError(_SOURCE, trace_id_hex, f"trace {trace_id_hex}: not OTLP JSON ({type(e).__name__}: {e}; "
                                                    f"expected batches[].scopeSpans[].spans[])") from None


def _summary(t: dict[str, Any]) -> TraceSummary:
    sets = t.get("spanSets") or ([t["spanSet"]] if t.get("spanSet") else [])
    ids = [s.get("spanID", "") for ss in sets for s in (ss.get("spans") or [])]
    if not isinstance(t["traceID"], str):
        raise TypeError("traceID")
    return TraceSummary(trace_id=_full_trace_id(t["traceID"]), root_service=t.get("rootServiceName"),
                        root_name=t.get("rootTraceName"), start_ns=int(t.get("startTimeUnixNano", 0)),
                        duration_ms=float(t.get("durationMs", 0)), matched_span_ids=[i for i in ids if i])


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def search_cut(returned: int, limit: int, metrics: dict[str, Any]) -> str | None:
    """Why a search's answer may not hold every trace that matched: Tempo stops searching
    once `limit` traces matched (the query frontend drops the jobs left), so as many traces
    as the limit, or fewer search jobs completed than there were, mean more may have matched.
    The answer never says how many did (`metrics` counts what was inspected, not matched)."""
    done, total = metrics.get("completedJobs"), metrics.get("totalJobs")
    if isinstance(done, int) and isinstance(total, int) and done < total:
        return f"Tempo stopped after {done} of {total} search jobs"
    if returned >= limit:
        return f"the search limit of {limit} traces was reached"
    return None


_HEX_ID = re.compile(r"[0-9a-fA-F]{16}|[0-9a-fA-F]{32}")


def _full_trace_id(v: str) -> str:
    """A search result's trace ID in the spans' form: Tempo's search writes it without its
    leading zeros (pkg/util/traceid.go TraceIDToHexString), trace-by-id with all 32 digits."""
    v = v.lower()
    return v.rjust(32, "0") if len(v) < 32 else v


def _b64_hex(v: str | None) -> str | None:
    """A gogo-jsonpb id (base64: 12 characters for a span, 24 for a trace) as hex. OTLP/JSON
    proper (a collector, a proxy re-encoding) writes hex, 16 or 32 digits: every such string
    is valid base64 too, so it is told apart by its length, never decoded."""
    if not v:
        return None
    if _HEX_ID.fullmatch(v):
        return v.lower()
    try:
        return base64.b64decode(v, validate=True).hex()
    except (binascii.Error, ValueError):
        return v.lower()


def _attr_value(v: dict[str, Any]) -> Any:
    for k in ("stringValue", "boolValue", "doubleValue"):
        if k in v:
            return v[k]
    if "intValue" in v:
        return int(v["intValue"])
    if "arrayValue" in v:
        return [_attr_value(x) for x in v["arrayValue"].get("values", [])]
    return None


def _attrs(items: list[dict[str, Any]] | None) -> dict[str, Any]:
    return {a["key"]: _attr_value(a.get("value", {})) for a in items or [] if "key" in a}


def spans_from_otlp(body: dict[str, Any]) -> list[Span]:
    """OTLP JSON (`batches` or `resourceSpans`, gogo jsonpb: base64 ids) -> Spans with hex ids."""
    out: list[Span] = []
    trace = body.get("trace", body)
    for rs in trace.get("batches") or trace.get("resourceSpans") or []:
        res = _attrs((rs.get("resource") or {}).get("attributes"))
        service = str(res.get("service.name", "unknown"))
        pod = res.get("k8s.pod.name")
        for ss in rs.get("scopeSpans") or rs.get("instrumentationLibrarySpans") or []:
            for s in ss.get("spans") or []:
                status = s.get("status") or {}
                code = status.get("code")
                attrs = _attrs(s.get("attributes"))
                if status.get("message"):
                    attrs["status.message"] = status["message"]
                out.append(Span(
                    trace_id=_b64_hex(s.get("traceId")) or "", span_id=_b64_hex(s.get("spanId")) or "",
                    parent_id=_b64_hex(s.get("parentSpanId")), service=service, operation=s.get("name", ""),
                    start_ns=int(s.get("startTimeUnixNano", 0)), end_ns=int(s.get("endTimeUnixNano", 0)),
                    error=code in ("STATUS_CODE_ERROR", 2), pod=str(pod) if pod else None, attributes=attrs))
    return out
