"""Prometheus source: PromQL range and instant queries -> `Series`.

Sent on a requests session (`_api`), its urllib3 retries switched off: retries are done
here (tenacity), so that what is retried and how long a dead Prometheus can hold a
cycle are decided in one place:

- connection refused, timeouts, HTTP 408/429/5xx: retried `cfg.retries` times with a
  short exponential backoff, then `SourceUnavailable`. Worst case is about
  `timeout_s * (retries + 1)` plus the backoff (`worst_case_s`). A Retry-After up to
  `BACKOFF_MAX_S` is waited out; a longer one (capped, monitor/sources/http.py) gives up
  at once and no request is sent until it has passed, as for Loki and Tempo. After a
  request found Prometheus unreachable (refused, DNS, connect timeout), none is sent
  for `DOWN_HOLD_S` either: each model's cycle would wait out the same retries.
- HTTP 400/422 (bad PromQL, bad parameters, execution errors): `QueryError` with
  Prometheus's own message, never retried.
- HTTP 401/403/404: `SourceUnavailable` at once (credentials or URL are wrong, a
  retry cannot fix them).

An empty list means NO DATA: the query matched no series in the window. That is a
state of its own, never a run of zeros and never healthy; the caller reports it.

A 200 answer that says it missed data (Thanos/Mimir `warnings`, VictoriaMetrics `isPartial`)
is used, so alerting goes on while a store is down; each Series read from it says why
(`Series.partial`), and the cycle never rolls back on its own on what it found there.

`query_range_many` sends many range queries over one window as one request (POST), each
tagged with a label of its own and joined with `or`, then splits the answer back per
query: a sweep of 1,000 models costs a few dozen requests instead of tens of thousands,
and the per-request client cost (most of the time, not Prometheus's) is paid once.

Range queries longer than Prometheus's 11,000 points per series are split into
consecutive requests on the same step grid and stitched back together, so callers
never see that limit; past `MAX_CHUNKS` requests the query is refused with a
`QueryError` that names the step to use instead.
"""
from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import requests
from prometheus_api_client import PrometheusApiClientException
from requests.adapters import HTTPAdapter
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt
from urllib3.util.retry import Retry

from detectors.records import Answer, Series
from monitor.config import PrometheusConfig
from monitor.sources.errors import QueryError, SourceState, SourceStatus, SourceUnavailable, source_down
from monitor.sources.http import DOWN_HOLD_S, Throttle, backoff_or_retry_after, bounded_retry_after
from monitor.sources.prometheus_answer import MalformedAnswer, answer_data, instant_rows, ordered, range_rows
from monitor.sources.prometheus_errors import (
    SOURCE,
    AnswerTooLarge,
    HttpStatus,
    Transient,
    client_error,
    describe,
    unreachable,
    whole_body,
)
from monitor.sources.prometheus_warnings import WarningFilter
from monitor.sources.promql_text import balanced_or

log = logging.getLogger(__name__)

MAX_POINTS_PER_REQUEST = 10_000  # Prometheus refuses more than 11,000 points per series
MAX_CHUNKS = 100  # 1,000,000 points per series; beyond that the step is surely a mistake
BACKOFF_FIRST_S = 0.1
BACKOFF_MAX_S = 1.0
BATCH_LABEL = "__vigil_q"  # tags each query's rows in a batched request; removed from the result
BATCH_MAX_QUERIES = 64  # queries per batched request (Prometheus slows super-linearly above)
BATCH_MAX_POINTS = 2_000_000  # expected points per batched request (queries x points per series)


def _ms(seconds: float) -> int:
    return int(round(seconds * 1000.0))


def _sec_text(ms: int) -> str:
    """Exact decimal seconds for a millisecond timestamp (Prometheus's resolution)."""
    sec, frac = divmod(ms, 1000)
    return f"{sec}.{frac:03d}" if frac else str(sec)


class PrometheusSource:
    """Reads PromQL results from one Prometheus-compatible server."""

    def __init__(self, cfg: PrometheusConfig, on_warning_ignored: Callable[[float], None] | None = None) -> None:
        self.cfg = cfg
        self.url = cfg.url.rstrip("/")
        self.warnings = WarningFilter(cfg.ignore_warnings, self.url, on_warning_ignored)
        self._headers = {"Authorization": f"Bearer {cfg.bearer_token}"} if cfg.bearer_token else {}
        if cfg.tenant:
            self._headers["X-Scope-OrgID"] = cfg.tenant
        self._session = requests.Session()
        # requests reads proxy and CA settings from the environment on every call (a large
        # share of a small query's client time); read them once here and keep them.
        self._session.proxies.update(requests.utils.get_environ_proxies(self.url))
        self._session.trust_env = False
        if ca_bundle := os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE"):
            self._session.verify = ca_bundle
        # urllib3 must not retry behind our back: the whole retry budget is tenacity's, in
        # _request. Queries are sent on the session (`_api`), not through prometheus-api-client,
        # whose errors carry no headers, so no Retry-After.
        self._session.mount(self.url, HTTPAdapter(max_retries=Retry(total=0, raise_on_status=False)))
        self._throttle = Throttle(SOURCE, self.url)

    @property
    def worst_case_s(self) -> float:
        """Seconds one request takes to end in SourceUnavailable when every attempt times out:
        timeout_s per attempt (the whole answer: `whole_body`) plus the backoff between
        attempts; a split long range costs this per chunk."""
        backoff = BACKOFF_MAX_S * self.cfg.retries  # a Retry-After up to BACKOFF_MAX_S is waited out
        return self.cfg.timeout_s * (self.cfg.retries + 1) + backoff

    def close(self) -> None:
        self._session.close()

    # ------------------------------------------------------------------ queries
    def query_range(
        self,
        query: str,
        start: float,
        end: float,
        step: float | None = None,
        *,
        name: str | None = None,
    ) -> list[Series]:
        """One Series per result row over [start, end] at `step` seconds (default cfg.step).

        [] means no data. Series.labels are the row's labels (with `__name__` when the
        result keeps it); points Prometheus has no value for are absent, not NaN.
        """
        step_s = self.cfg.step if step is None else step
        if not (isinstance(step_s, (int, float)) and math.isfinite(step_s) and step_s >= 0.001):
            raise QueryError(SOURCE, query, f"step must be at least 0.001 s, got {step_s!r}")
        start_ms, end_ms, step_ms = _ms(start), _ms(end), _ms(step_s)
        if end_ms < start_ms:
            raise QueryError(SOURCE, query, f"end ({end}) is before start ({start})")
        intervals = (end_ms - start_ms) // step_ms
        chunks = intervals // MAX_POINTS_PER_REQUEST + 1
        if chunks > MAX_CHUNKS:
            least = math.ceil((end_ms - start_ms) / (MAX_CHUNKS * MAX_POINTS_PER_REQUEST) / 1000.0)
            raise QueryError(
                SOURCE,
                query,
                f"{intervals + 1} points per series at step {step_s} s over {(end - start):.0f} s is more "
                f"than {MAX_CHUNKS * MAX_POINTS_PER_REQUEST} points; use a step of at least {least} s",
            )
        merged: dict[tuple[tuple[str, str], ...], tuple[dict[str, str], list[np.ndarray], list[np.ndarray]]] = {}
        notes: list[str] = []  # why a chunk's answer may be partial
        for k in range(chunks):
            # Each chunk starts on the same grid (start + i*step), so stitching is exact.
            c_start = start_ms + k * MAX_POINTS_PER_REQUEST * step_ms
            c_end = min(c_start + (MAX_POINTS_PER_REQUEST - 1) * step_ms, end_ms)
            if k == chunks - 1:
                c_end = end_ms
            rows, note = self._request(query, "range", c_start, c_end, step_ms, parse=range_rows)
            notes += [note] if note and note not in notes else []
            for metric, ts, vals in rows:
                key = tuple(sorted(metric.items()))
                if key not in merged:
                    merged[key] = (metric, [], [])
                merged[key][1].append(ts)
                merged[key][2].append(vals)
        out = []
        for metric, ts_parts, val_parts in merged.values():
            ts = np.concatenate(ts_parts) if len(ts_parts) > 1 else ts_parts[0]
            vals = np.concatenate(val_parts) if len(val_parts) > 1 else val_parts[0]
            ts, vals = _in_order(ts, vals, query, metric)
            out.append(Series(name or metric.get("__name__") or query, metric, ts, vals, "; ".join(notes)))
        return Answer.of(out, "; ".join(notes))  # partial even with no series: the missing store may hold them all

    def query_range_many(
        self, queries: Sequence[str], start: float, end: float, step: float | None = None
    ) -> list[list[Series] | QueryError | SourceUnavailable]:
        """Many range queries over one window, batched: for each query, in order, its
        Series (named by their `__name__`, else the query) or the error it alone would
        have raised. A batch Prometheus rejects (one bad query in it) is retried query by
        query, so a bad query never costs its neighbours; so is one that times out or draws
        a 5xx (too heavy), for at most `worst_case_s` after the first such failure (a hung
        Prometheus is not asked once per query); an unreachable Prometheus
        is one SourceUnavailable for the whole batch, not a retry per query."""
        step_s = self.cfg.step if step is None else step
        points = int((end - start) // max(step_s, 0.001)) + 1
        per_batch = 1 if points > MAX_POINTS_PER_REQUEST else max(1, min(BATCH_MAX_QUERIES, BATCH_MAX_POINTS // points))
        out: list[list[Series] | QueryError | SourceUnavailable] = []
        split = _SplitBudget(self.worst_case_s)
        for i in range(0, len(queries), per_batch):
            part = list(queries[i:i + per_batch])
            got = self._batch(part, start, end, step_s, split)
            out.extend(got)
            if (down := source_down(got)) is not None:
                # Unreachable: every further batch would wait out the same retries (a batch that
                # timed out or drew a 5xx says nothing of the next one: it is asked).
                out.extend([down] * (len(queries) - len(out)))
                break
        return out

    def _one(self, query: str, start: float, end: float, step: float) -> list[Series] | QueryError | SourceUnavailable:
        try:
            return self.query_range(query, start, end, step)
        except (QueryError, SourceUnavailable) as e:
            return e

    def _batch(self, queries: list[str], start: float, end: float, step: float, split: _SplitBudget
               ) -> list[list[Series] | QueryError | SourceUnavailable]:
        if len(queries) == 1:
            return [self._one(queries[0], start, end, step)]
        joined = balanced_or([f'label_replace(({q}), "{BATCH_LABEL}", "{i}", "", "")'
                               for i, q in enumerate(queries)])
        try:
            rows, note = self._request(joined, "range_post", _ms(start), _ms(end), _ms(step), len(queries),
                                       parse=range_rows)
        except QueryError:
            return [self._one(q, start, end, step) for q in queries]
        except SourceUnavailable as e:
            if e.whole_source or not split.allows():
                return [e] * len(queries)
            return self._singles(queries, start, end, step, split, e)
        per_query = [Answer.of(partial=note) for _ in queries]
        for metric, ts, vals in rows:
            idx = metric.pop(BATCH_LABEL, None)
            if idx is None or not idx.isdigit() or int(idx) >= len(queries):
                continue
            i = int(idx)
            ts, vals = _in_order(ts, vals, queries[i], metric)
            # The answer says only that it missed a store, not for which query: each is marked.
            per_query[i].append(Series(metric.get("__name__") or queries[i], metric, ts, vals, note))
        return list(per_query)

    def _singles(self, queries: list[str], start: float, end: float, step: float, split: _SplitBudget,
                 failed: SourceUnavailable) -> list[list[Series] | QueryError | SourceUnavailable]:
        """A batch that timed out (or drew a 5xx), asked query by query while the split
        budget lasts; those that fail again or are not asked keep the batch's error, and an
        unreachable Prometheus ends it."""
        out: list[list[Series] | QueryError | SourceUnavailable] = []
        for q in queries:
            got = self._one(q, start, end, step) if split.allows() else failed
            if isinstance(got, SourceUnavailable) and got.whole_source and got is not failed:
                return out + [got] * (len(queries) - len(out))
            out.append(failed if isinstance(got, SourceUnavailable) else got)  # it failed alone too
        return out

    def query(self, query: str, at: float, *, name: str | None = None) -> list[Series]:
        """Instant query at `at`: one one-point Series per vector element ([] = no data).

        A scalar result is one Series without labels; a range-vector selector such as
        `x[5m]` gives its raw samples.
        """
        rows, note = self._request(query, "instant", _ms(at), None, None, parse=instant_rows)
        if isinstance(rows, str):
            raise QueryError(SOURCE, query, f"expected a number, got the string {rows!r}")
        return Answer.of((Series(name or metric.get("__name__") or query, metric, *_in_order(ts, vals, query, metric),
                                 note) for metric, ts, vals in rows), note)

    def ready(self) -> SourceState:
        """GET /-/ready once (no retries: readiness reports the state now). A store without
        Prometheus's management API (Mimir, Cortex: readiness at their root, the query API
        under a prefix) answers 404 there: it is ready when it answers a query."""
        checked = time.time()
        try:
            resp = self._session.get(f"{self.url}/-/ready", headers=self._headers, timeout=self.cfg.timeout_s)
            if resp.status_code == 404:
                resp = self._session.get(f"{self.url}/api/v1/query", params={"query": "vector(1)"},
                                         headers=self._headers, timeout=self.cfg.timeout_s)
                if resp.status_code == 200:
                    return SourceState(SOURCE, SourceStatus.UP, self.url, "answers queries (no /-/ready)", checked)
        except requests.RequestException as e:
            return SourceState(SOURCE, SourceStatus.DOWN, self.url, describe(e), checked)
        if resp.status_code == 200:
            return SourceState(SOURCE, SourceStatus.UP, self.url, resp.text.strip()[:200], checked)
        return SourceState(
            SOURCE, SourceStatus.DOWN, self.url, f"HTTP {resp.status_code}: {resp.text.strip()[:200]}", checked
        )

    # ------------------------------------------------------------------ transport
    def _request(self, query: str, kind: str, start_ms: int, end_ms: int | None, step_ms: int | None,
                 answers: int = 1, *, parse: Callable[[Any], Any]) -> tuple[Any, str]:
        """One query's rows (`parse` of the answer's `data`) and why it may be partial
        (`partial_note`), retried on transient failures; SourceUnavailable when retries run out.
        `answers`: the queries a batched `query` stands for (its ignored warnings count once for each)."""
        self._throttle.check()

        def attempt() -> tuple[Any, str]:
            try:
                data, note = self._send(query, kind, start_ms, end_ms, step_ms, answers)
                return parse(data), note
            except PrometheusApiClientException as e:
                err = client_error(query, self.url, e)
                if isinstance(err, Transient) and (err.retry_after or 0.0) > BACKOFF_MAX_S:
                    # Asked to wait longer than a retry may: every request until then is refused
                    # without asking (whole_source: a sweep stops at the first).
                    raise self._throttle.hold(float(err.retry_after or 0.0), err.reason) from None
                raise err from None
            except requests.RequestException as e:  # ConnectionError: refused, connect timeout, DNS
                raise Transient(describe(e), unreachable=unreachable(e)) from None
            except AnswerTooLarge as e:  # the query's own weight: not retried, not the source's fault
                raise QueryError(SOURCE, query, str(e)) from None
            except MalformedAnswer as e:  # named where it is wrong: the query's other answers may be whole
                raise Transient(f"unexpected answer: {e}") from None
            except (KeyError, TypeError, ValueError) as e:
                raise Transient(f"unexpected response body ({type(e).__name__}: {e})") from None

        t0 = time.perf_counter()
        try:
            return self._retrying()(attempt)
        except Transient as e:
            reason = f"{e.reason} (gave up after {self.cfg.retries + 1} attempts, {time.perf_counter() - t0:.1f} s)"
            if e.unreachable:  # the next model's cycle would wait out the same retries: not asked for a while
                self._throttle.down(DOWN_HOLD_S, reason)
            raise SourceUnavailable(SOURCE, self.url, reason, whole_source=e.unreachable) from None

    def _send(self, query: str, kind: str, start_ms: int, end_ms: int | None, step_ms: int | None,
              answers: int = 1) -> tuple[Any, str]:
        """One attempt: an instant query, a range query (GET) or a batched range query (POST)."""
        # The server-side evaluation timeout matches ours, so a heavy query is cut there too.
        params = {"timeout": f"{self.cfg.timeout_s}"}
        if kind in ("range", "range_post"):  # a batched query (range_post) is too long for a URL
            assert end_ms is not None and step_ms is not None
            return self._api("POST" if kind == "range_post" else "GET", "query_range",
                             {**params, "query": query, "start": _sec_text(start_ms), "end": _sec_text(end_ms),
                              "step": _sec_text(step_ms)}, answers)
        return self._api("GET", "query", {**params, "query": query, "time": _sec_text(start_ms)})

    def _retrying(self) -> Retrying:
        """Exponential backoff over transient failures, each retry logged."""
        return Retrying(
            stop=stop_after_attempt(self.cfg.retries + 1),
            wait=backoff_or_retry_after(BACKOFF_FIRST_S, BACKOFF_MAX_S),
            retry=retry_if_exception_type(Transient),
            before_sleep=lambda rs: log.warning(
                "prometheus request failed, retrying",
                extra={
                    "url": self.url,
                    "attempt": rs.attempt_number,
                    "reason": getattr(rs.outcome.exception(), "reason", "") if rs.outcome else "",
                },
            ),
            reraise=True,
        )

    def _api(self, method: str, endpoint: str, params: dict[str, str], answers: int = 1) -> tuple[Any, str]:
        """One request to /api/v1/<endpoint>: its `data` and `partial_note`; a non-200 is raised
        as the client library raises it (so `_request` classifies all alike), with its Retry-After."""
        ends = time.monotonic() + self.cfg.timeout_s
        with self._session.request(method, f"{self.url}/api/v1/{endpoint}",
                                   params=params if method == "GET" else None,
                                   data=params if method == "POST" else None,
                                   headers=self._headers, timeout=self.cfg.timeout_s, stream=True) as resp:
            content = whole_body(resp, ends, self.cfg.timeout_s)
        if resp.status_code != 200:
            raise HttpStatus(resp.status_code, content,
                             bounded_retry_after(resp.headers.get("Retry-After"), time.time()))
        body = json.loads(content)
        return answer_data(body), self.warnings.note(body, params.get("query", ""), answers)


def _in_order(ts: np.ndarray, vals: np.ndarray, query: str, metric: dict[str, str]) -> tuple[np.ndarray, np.ndarray]:
    ts, vals, fixed = ordered(ts, vals)
    if fixed:
        log.warning("prometheus answered points out of time order or twice: put in order",
                    extra={"query": query[:200], "labels": metric})
    return ts, vals


class _SplitBudget:
    """The time a `query_range_many` may spend asking query by query the batches that
    failed for their weight: `seconds` from the first such query on."""

    def __init__(self, seconds: float) -> None:
        self.seconds, self.deadline = seconds, math.inf

    def allows(self) -> bool:
        now = time.monotonic()
        if self.deadline == math.inf:
            self.deadline = now + self.seconds
        return now < self.deadline
