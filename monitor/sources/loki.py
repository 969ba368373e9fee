"""Loki client: LogQL range queries paged forward into LogRecords.

Loki returns at most `limit` entries per request. We ask for `direction=forward` and,
while a page comes back full, ask again from the newest timestamp of that page
(`start` is inclusive), dropping entries we already hold. Entries sharing that
boundary timestamp are therefore neither lost nor duplicated. If a whole page has
one single timestamp, the next request starts 1 ns later (Loki cannot page within
one nanosecond). A query stops after `max_lines` lines, or at a full page holding lines
from before the start it asked (its `start` was ignored: the same page again). Either way lines of the range
are unread: the result's `cut` says so, and the cycle reports its logs partly blind.

Errors follow the contract: Loki errors are plain text. 400 raises QueryError with
that text, except a `limit` over the tenant's max_entries_limit_per_query: its limit
(named in the answer) is used for every page from then on, and said once in the log;
429, 5xx and connection failures are retried with exponential backoff and then raise
SourceUnavailable.
"""
from __future__ import annotations

import logging
import re

import httpx

from detectors.records import LogRecord
from monitor.config import LokiConfig
from monitor.sources.errors import QueryError
from monitor.sources.http import HttpSource

log = logging.getLogger(__name__)
_SOURCE = "loki"
_MAX_PAGES = 10_000
# pkg/validation ErrMaxEntriesLimit (older Loki: `max_entries_limit`), and the limit it allows.
_MAX_ENTRIES = re.compile(r"max entries limit per query exceeded, limit > max_entries_limit\w* \(\d+ > (\d+)\)")


class LogLines(list[LogRecord]):
    """Log records, oldest first; `cut`: why some lines of the range were not read (None: all were);
    `until`: when the read stopped before the range's end, the time (epoch s) before which
    every line was read (None: the read reached the end)."""

    cut: str | None = None
    until: float | None = None


class LokiSource(HttpSource):
    source = _SOURCE

    def __init__(self, config: LokiConfig, *, client: httpx.Client | None = None,
                 retries: int = 3, backoff_s: float = 0.5, max_backoff_s: float = 8.0) -> None:
        self.config = config
        headers = {}
        if config.tenant:
            headers["X-Scope-OrgID"] = config.tenant
        if config.bearer_token:
            headers["Authorization"] = f"Bearer {config.bearer_token}"
        super().__init__(config.url, config.timeout_s, headers, client=client, retries=retries,
                         backoff_s=backoff_s, max_backoff_s=max_backoff_s)
        self._max_entries = config.page_limit  # lowered to Loki's max_entries_limit_per_query if it is less

    def query_logs(self, query: str, start: float, end: float, *, service_label: str | None = None
                   ) -> LogLines:
        """The entries with start <= ts < end (epoch seconds), oldest first, up to
        `max_lines` (`cut` then says where it stopped); each record's service from
        `service_label` (default: the configured `service_label`)."""
        service_label = service_label or self.config.service_label
        if end <= start:
            raise ValueError(f"end ({end}) must be after start ({start})")
        start_ns, end_ns = int(round(start * 1e9)), int(round(end * 1e9))
        seen: set[tuple] = set()
        out: list[tuple[int, LogRecord]] = []
        cursor, cut, until = start_ns, None, None
        for _ in range(_MAX_PAGES):
            entries, limit = self._page(query, cursor, end_ns)
            for ns, line, stream, meta in entries:
                key = (ns, line, tuple(sorted(stream.items())))
                if key in seen:
                    continue
                seen.add(key)
                out.append((ns, _record(ns, line, stream, meta, service_label)))
            if len(entries) < limit:
                break
            if (oldest := min(e[0] for e in entries)) < cursor:
                # `start` is inclusive and nothing before it is answered: a cache or proxy that
                # ignores the query string hands back the same page each time (10,000 requests
                # of nothing new, minutes of a cycle, before this stopped it).
                cut = (f"Loki answered lines from before the start asked ({oldest} < {cursor} ns): "
                       "a cache or proxy before it ignoring the query's start? The rest unread")
                until = cursor / 1e9
                break
            newest = max(e[0] for e in entries)
            if newest <= cursor:
                cut = f"more than {limit} lines (sources.loki.page_limit) at one nanosecond {newest}; the rest unread"
                log.warning("loki page full of one timestamp; skipping past it",
                            extra={"query": query, "ts_ns": newest, "limit": limit})
                newest = cursor + 1
            cursor = newest
            if cursor >= end_ns:
                break
            if len(out) >= self.config.max_lines:
                cut = (f"read stopped at {len(out)} lines (sources.loki.max_lines {self.config.max_lines}); "
                       f"the {(end_ns - cursor) / 1e9:.0f} s after {cursor} ns unread")
                until = cursor / 1e9  # lines at the cursor's nanosecond may be partly read
                break
        else:
            cut = f"stopped after {_MAX_PAGES} pages; the rest unread"
            until = cursor / 1e9
        out.sort(key=lambda x: x[0])
        lines = LogLines(rec for _, rec in out)
        lines.cut, lines.until = cut, until
        if cut:
            log.warning("loki query cut", extra={"query": query, "cut": cut})
        return lines


    def _page(self, query: str, start_ns: int, end_ns: int) -> tuple[list[tuple[int, str, dict, dict]], int]:
        """The entries from `start_ns` on, and the page size they were asked with."""
        limit = self._max_entries
        try:
            r = self._get("/loki/api/v1/query_range",
                          {"query": query, "start": start_ns, "end": end_ns, "limit": limit, "direction": "forward"},
                          query)
        except QueryError as e:
            allowed = _MAX_ENTRIES.search(e.reason)
            if allowed is None or not 0 < int(allowed.group(1)) < limit:
                raise
            self._max_entries = int(allowed.group(1))
            log.warning("loki's max_entries_limit_per_query (%d) is below sources.loki.page_limit (%d); paging at %d",
                        self._max_entries, self.config.page_limit, self._max_entries)
            return self._page(query, start_ns, end_ns)
        return _entries(r, query), limit


def _entries(r: httpx.Response, query: str) -> list[tuple[int, str, dict, dict]]:
    try:
        body = r.json()
        data = body["data"]
    except (ValueError, KeyError, TypeError):
        raise QueryError(_SOURCE, query, f"unexpected response: {r.text[:200]}") from None
    if not isinstance(data, dict):
        raise QueryError(_SOURCE, query, f"data: expected an object, got {_show(data)}")
    if data.get("resultType") != "streams":
        raise QueryError(_SOURCE, query, f"expected a log query (streams), got {data.get('resultType')!r}")
    result = data.get("result") or []
    if not isinstance(result, list):
        raise QueryError(_SOURCE, query, f"data.result: expected a list of streams, got {_show(result)}")
    out = []
    for i, stream in enumerate(result):
        labels = stream.get("stream") or {} if isinstance(stream, dict) else None
        if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
            raise QueryError(_SOURCE, query, f"data.result[{i}].stream: expected an object of text labels, "
                                             f"got {_show(stream.get('stream') if labels is not None else stream)}")
        values = stream.get("values") or []
        for j, v in enumerate(values if isinstance(values, list) else [values]):
            if not (isinstance(v, list) and 2 <= len(v) <= 3 and isinstance(v[1], str)
                    and isinstance(v[0], str | int) and str(v[0]).isdigit()):
                # One malformed entry used to be an internal error that blinded traces too.
                raise QueryError(_SOURCE, query, f"data.result[{i}].values[{j}]: expected [\"<ns epoch>\", "
                                                 f"\"<line>\"(, metadata)], got {_show(v)}")
            out.append((int(v[0]), v[1], labels, _metadata(v[2] if len(v) > 2 else None)))
    return out


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _metadata(third: object) -> dict:
    """An entry's own metadata. Loki folds structured metadata into the stream's labels
    unless asked with `categorize-labels`, which nests it (`structuredMetadata`, `parsed`);
    our contract notes, and some proxies, give it as a flat object: all three are read."""
    if not isinstance(third, dict):
        return {}
    nested = {k: third[k] for k in ("structuredMetadata", "parsed") if isinstance(third.get(k), dict)}
    if not nested:
        return third
    return {**nested.get("parsed", {}), **nested.get("structuredMetadata", {})}


def _record(ns: int, line: str, stream: dict, meta: dict, service_label: str) -> LogRecord:
    labels = {**stream, **{str(k): str(v) for k, v in meta.items()}}
    service = stream.get(service_label) or stream.get("service_name") or stream.get("app") or "unknown"
    level = stream.get("level") or stream.get("detected_level") or meta.get("level")
    if isinstance(level, str) and level.lower() == "unknown":
        # Loki 3 stamps `detected_level="unknown"` on every line whose level it cannot
        # tell: that is no level, and the detector must read the line's own words (an
        # unlevelled "connection refused" is an error) rather than take it as a level.
        level = None
    trace_id = meta.get("trace_id") or meta.get("traceID") or stream.get("trace_id")
    return LogRecord(ts=ns / 1e9, service=service, line=line, pod=stream.get("pod"),
                     level=level.upper() if isinstance(level, str) else None,
                     trace_id=trace_id, labels=labels)
