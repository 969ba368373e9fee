"""A Loki or Tempo that cannot be connected to (refused, DNS, connect timeout) costs one
call its retries and backoff; the calls after it, each model's cycle in a sweep, fail at
once (the source blind, never an all-clear) until a short hold has passed, instead of each
waiting out the same retries: a dead Loki made a 1,000-model sweep take half an hour."""
from __future__ import annotations

from typing import Any

import httpx
import pytest

import monitor.sources.http as http_mod
from monitor.config import LokiConfig, TempoConfig
from monitor.sources.errors import SourceUnavailable
from monitor.sources.loki import LokiSource
from monitor.sources.tempo import TempoSource

URL = "http://loki.invalid:3100"


def _refusing(calls: list[str], error: type[httpx.TransportError] = httpx.ConnectError) -> httpx.Client:
    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        raise error("[Errno 111] Connection refused", request=request)
    return httpx.Client(base_url=URL, transport=httpx.MockTransport(handler))


@pytest.mark.parametrize("error", [httpx.ConnectError, httpx.ConnectTimeout])
def test_an_unreachable_loki_is_not_asked_again_by_the_next_models_cycle(error: Any, monkeypatch: Any) -> None:
    clock = [1000.0]
    monkeypatch.setattr(http_mod.time, "monotonic", lambda: clock[0])
    calls: list[str] = []
    src = LokiSource(LokiConfig(url=URL), client=_refusing(calls, error), retries=3, backoff_s=0.0, max_backoff_s=0.0)
    with pytest.raises(SourceUnavailable, match="after 4 attempts"):
        src.query_logs('{service="a"}', 100.0, 160.0)
    assert len(calls) == 4
    for svc in ("b", "c", "d"):  # the next models' cycles
        with pytest.raises(SourceUnavailable, match="Connection refused.*not asked again"):
            src.query_logs(f'{{service="{svc}"}}', 100.0, 160.0)
    assert len(calls) == 4, "each later cycle waited out the same retries against a dead Loki"
    clock[0] += http_mod.DOWN_HOLD_S + 1  # the hold is short: a Loki back up is read again
    with pytest.raises(SourceUnavailable):
        src.query_logs('{service="e"}', 100.0, 160.0)
    assert len(calls) == 8


def test_an_unreachable_tempo_is_held_too(monkeypatch: Any) -> None:
    monkeypatch.setattr(http_mod.time, "monotonic", lambda: 1000.0)
    calls: list[str] = []
    src = TempoSource(TempoConfig(url=URL), client=_refusing(calls), retries=1, backoff_s=0.0, max_backoff_s=0.0)
    with pytest.raises(SourceUnavailable):
        src.search('{ resource.service.name = "a" }', 100.0, 160.0)
    with pytest.raises(SourceUnavailable, match="not asked again"):
        src.trace("0" * 32)
    assert len(calls) == 2


def test_a_read_timeout_or_a_5xx_does_not_hold_the_source(monkeypatch: Any) -> None:
    """One heavy query timing out (or drawing a 5xx) says nothing of the next model's."""
    monkeypatch.setattr(http_mod.time, "monotonic", lambda: 1000.0)
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if len(calls) <= 2:
            raise httpx.ReadTimeout("timed out", request=request)
        return httpx.Response(503, text="too busy")

    client = httpx.Client(base_url=URL, transport=httpx.MockTransport(handler))
    src = LokiSource(LokiConfig(url=URL), client=client, retries=1, backoff_s=0.0, max_backoff_s=0.0)
    for _ in range(2):
        with pytest.raises(SourceUnavailable) as e:
            src.query_logs('{service="a"}', 100.0, 160.0)
        assert "not asked again" not in str(e.value)
    assert len(calls) == 4


def _timing_out(calls: list[str], answers: list[bool] | None = None) -> httpx.Client:
    """Every request times out, or as `answers` says (True: a 200 with no lines)."""
    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if answers is not None and answers.pop(0):
            return httpx.Response(200, json={"status": "success", "data": {"resultType": "streams", "result": []}})
        raise httpx.ReadTimeout("timed out", request=request)
    return httpx.Client(base_url=URL, transport=httpx.MockTransport(handler))


def test_a_hung_loki_is_not_asked_by_every_models_cycle(monkeypatch: Any) -> None:
    """A Loki that takes requests and answers none (an overloaded querier, a partition behind
    its gateway) cost every model's cycle timeout_s x (retries + 1): 40 s a model, so one
    hung Loki delayed every model's metric alerts by hours. Once several reads in a row
    have timed out, it is held like an unreachable one."""
    monkeypatch.setattr(http_mod.time, "monotonic", lambda: 1000.0)
    calls: list[str] = []
    src = LokiSource(LokiConfig(url=URL), client=_timing_out(calls), retries=1, backoff_s=0.0, max_backoff_s=0.0)
    for svc in range(http_mod.TIMEOUTS_BEFORE_HOLD):
        with pytest.raises(SourceUnavailable, match="ReadTimeout"):
            src.query_logs(f'{{service="{svc}"}}', 100.0, 160.0)
    asked = len(calls)
    assert asked == 2 * http_mod.TIMEOUTS_BEFORE_HOLD
    for svc in ("x", "y"):
        with pytest.raises(SourceUnavailable, match="in a row timed out.*not asked again"):
            src.query_logs(f'{{service="{svc}"}}', 100.0, 160.0)
    assert len(calls) == asked


def test_reads_that_time_out_between_answered_ones_hold_nothing(monkeypatch: Any) -> None:
    """One heavy service's read timing out each cycle says nothing of the others'."""
    monkeypatch.setattr(http_mod.time, "monotonic", lambda: 1000.0)
    n = http_mod.TIMEOUTS_BEFORE_HOLD - 1
    answers = ([False, False] * n + [True]) * 3
    calls: list[str] = []
    src = LokiSource(LokiConfig(url=URL), client=_timing_out(calls, answers), retries=1, backoff_s=0.0,
                     max_backoff_s=0.0)
    for _ in range(3):
        for _ in range(n):
            with pytest.raises(SourceUnavailable) as e:
                src.query_logs('{service="heavy"}', 100.0, 160.0)
            assert "not asked again" not in str(e.value)
        assert src.query_logs('{service="light"}', 100.0, 160.0) == []
    assert answers == []


def test_a_missing_tenant_names_the_setting_that_sends_it() -> None:
    """Loki answers a request without X-Scope-OrgID 400 `no org id` and Tempo 401: the
    operator was told the query was rejected (or the source down) and nothing said which
    setting sends the header."""
    try:
        from tests.fakes.loki_server import FakeLoki
        from tests.fakes.tempo_server import FakeTempo
    except ImportError:  # pytest put tests/ on sys.path, not the repo root
        from fakes.loki_server import FakeLoki  # type: ignore[no-redef]
        from fakes.tempo_server import FakeTempo  # type: ignore[no-redef]
    from monitor.sources.errors import QueryError

    with FakeLoki([], tenant="ml") as loki, FakeTempo([], tenant="ml") as tempo:
        with pytest.raises(QueryError, match=r"no org id.*sources\.loki\.tenant"):
            LokiSource(LokiConfig(url=loki.url)).query_logs('{service="a"}', 100.0, 160.0)
        with pytest.raises(SourceUnavailable, match=r"no org id.*sources\.tempo\.tenant"):
            TempoSource(TempoConfig(url=tempo.url)).search('{ resource.service.name = "a" }', 100.0, 160.0)
