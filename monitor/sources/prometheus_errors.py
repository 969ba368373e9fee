"""What Prometheus's failures mean for a query: retry it (`Transient`), give up on the
source (`SourceUnavailable`), or blame the query (`QueryError`); an answer that does not
come whole within the timeout is `Transient` too (`whole_body`). See the module
docstring of monitor/sources/prometheus.py for the policy."""
from __future__ import annotations

import ast
import json
import re
import time
from collections.abc import Mapping
from typing import Any

import requests
import urllib3.exceptions
from prometheus_api_client import PrometheusApiClientException

from monitor.sources.errors import QueryError, SourceUnavailable

SOURCE = "prometheus"
# The most of one answer read (decompressed). A KPI written without its aggregation on a large
# cluster (`rate(http_requests_total[5m])`: 100,000 series) is answered in full (Prometheus
# allows 50 million samples): 120 MB of JSON is about 1 GB once parsed, 1 million series was
# the daemon killed for memory. A sweep's batch stays well under it (BATCH_MAX_POINTS).
MAX_ANSWER_BYTES = 256 * 2**20
_STATUS_IN_MESSAGE = re.compile(r"^HTTP Status Code (\d+) \((.*)\)$", re.DOTALL)


class Transient(Exception):
    """A failure worth retrying; becomes SourceUnavailable when retries run out."""

    def __init__(self, reason: str, *, unreachable: bool = False, retry_after: float | None = None) -> None:
        self.reason = reason
        self.unreachable = unreachable  # no connection at all: every request would fail alike
        self.retry_after = retry_after  # seconds the server asked us to wait (Retry-After), capped
        super().__init__(reason)


class HttpStatus(PrometheusApiClientException):
    """A non-200 answer in the client library's message format, with the Retry-After it
    carried (seconds, capped; None without one): the library's own exception drops headers."""

    def __init__(self, status: int, content: bytes, retry_after: float | None) -> None:
        super().__init__(f"HTTP Status Code {status} ({content!r})")
        self.retry_after = retry_after


def parse_client_error(exc: PrometheusApiClientException) -> tuple[int | None, str]:
    """(HTTP status, Prometheus's error text) from the client's exception message.

    prometheus-api-client 0.7 raises `PrometheusApiClientException("HTTP Status Code
    400 (b'{...json...}')")`: the body is only available as the repr of bytes.
    """
    text = str(exc)
    m = _STATUS_IN_MESSAGE.match(text)
    if not m:
        return None, text
    status, body_repr = int(m.group(1)), m.group(2)
    try:
        body = ast.literal_eval(body_repr)
        if isinstance(body, bytes):
            body = body.decode("utf-8", errors="replace")
    except (ValueError, SyntaxError):
        body = body_repr
    try:
        payload = json.loads(body)
    except (TypeError, ValueError):
        return status, str(body).strip()[:500]
    if isinstance(payload, dict) and payload.get("error"):
        return status, str(payload["error"])
    return status, str(body).strip()[:500]


def client_error(query: str, url: str, e: PrometheusApiClientException) -> Exception:
    """What an HTTP error means: a bad query, bad credentials, a refusal, or a transient failure."""
    status, reason = parse_client_error(e)
    if status in (400, 422):
        return QueryError(SOURCE, query, reason)
    if status in (401, 403):
        # Mimir's and Cortex's answer to a request without X-Scope-OrgID
        setting = "tenant" if "no org id" in reason else "bearer_token"
        return SourceUnavailable(SOURCE, url, f"HTTP {status} {reason}: check sources.prometheus.{setting}")
    if status is not None and status != 408 and status != 429 and status < 500:
        return SourceUnavailable(SOURCE, url, f"HTTP {status} {reason}")
    return Transient(f"HTTP {status}: {reason}", retry_after=getattr(e, "retry_after", None))


def unreachable(e: requests.RequestException) -> bool:
    """No connection at all (refused, DNS, connect timeout): every request would fail alike.
    A GET whose answer did not come in time reached the server, though requests raises it
    as a ConnectionError too (urllib3 wraps the read timeout in MaxRetryError, even with
    retries off): that query timed out, the next one may be answered."""
    if not isinstance(e, requests.ConnectionError):
        return False
    reason = getattr(e.args[0], "reason", None) if e.args else None
    return not isinstance(reason, urllib3.exceptions.ReadTimeoutError)


def describe(e: requests.RequestException) -> str:
    """A connection failure in a few words, for the logs and SourceUnavailable."""
    if isinstance(e, requests.Timeout):
        return f"timed out ({type(e).__name__})"
    if isinstance(e, requests.ConnectionError):
        text = str(e)
        if "Connection refused" in text:
            return "connection refused"
        if "timed out" in text:
            return "timed out"
        return f"connection failed: {text[:200]}"
    return f"{type(e).__name__}: {str(e)[:200]}"


class AnswerTooLarge(Exception):
    """An answer past MAX_ANSWER_BYTES: the query asks for too much, asking again will not help."""

    def __init__(self, read: int) -> None:
        self.read = read
        super().__init__(f"the answer passed {MAX_ANSWER_BYTES / 2**20:g} MiB ({read / 2**20:.0f} MiB read): the "
                         "query matches too many series or points; aggregate it (sum(...), sum by (...)) "
                         "or narrow its selector")


def whole_body(resp: requests.Response, ends: float, timeout_s: float) -> bytes:
    """The answer's body, whole by `ends` (monotonic): requests' timeout bounds each read, so
    a server or a wedged proxy sending a byte at a time would hold the cycle for minutes; and
    at most MAX_ANSWER_BYTES of it once decompressed (`AnswerTooLarge`), counted as it comes."""
    length = resp.headers.get("Content-Length", "")
    if length.isdigit() and not resp.headers.get("Content-Encoding") and int(length) > MAX_ANSWER_BYTES:
        raise AnswerTooLarge(int(length))
    read1 = getattr(resp.raw, "read1", None)  # urllib3 >= 2: what has come, not a full chunk
    if read1 is None:
        if len(resp.content) > MAX_ANSWER_BYTES:
            raise AnswerTooLarge(len(resp.content))
        return resp.content
    chunks, read = [], 0
    while chunk := read1(1 << 16, decode_content=True):
        chunks.append(chunk)
        read += len(chunk)
        if read > MAX_ANSWER_BYTES:
            raise AnswerTooLarge(read)
        if time.monotonic() > ends:
            raise Transient(f"no complete answer within {timeout_s:g} s")
    return b"".join(chunks)


def partial_note(body: Mapping[str, Any]) -> str:
    """Why a 200 answer may be missing data ("" when it is whole): VictoriaMetrics' cluster
    marks it `"isPartial": true` (a vmstorage node did not answer); Thanos and Mimir/Cortex
    put a `warnings` list in it (a store or querier missed). Prometheus's own PromQL notes
    ("PromQL warning: ...", "PromQL info: ...": a counter without _total, a mixed
    histogram) say the query is odd, not that data is missing: they are no partial answer."""
    missed = [str(w)[:200] for w in body.get("warnings") or () if not str(w).startswith("PromQL ")]
    if body.get("isPartial") is True:
        missed.insert(0, "isPartial: a storage node did not answer")
    return "; ".join(missed[:3]) + (f" (+{len(missed) - 3} more)" if len(missed) > 3 else "")
