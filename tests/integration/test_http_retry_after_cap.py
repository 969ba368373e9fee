"""A Retry-After far in the future (a proxy's day-long one, an absurd number, an HTTP
date a day ahead) keeps Loki/Tempo unasked for a few minutes at most, not for a day."""
from __future__ import annotations

import email.utils
import time
from typing import Any

import pytest

try:
    from tests.fakes.loki_server import FakeLoki, Stream
except ImportError:  # pytest put tests/ on sys.path, not the repo root
    from fakes.loki_server import FakeLoki, Stream
import monitor.sources.http as http_mod
from monitor.config import LokiConfig
from monitor.sources.errors import SourceUnavailable
from monitor.sources.loki import LokiSource

T0 = 1_795_259_340_000_000_000  # ns


def _streams() -> list[Stream]:
    s = Stream({"service": "payments"})
    s.entries.extend((T0 + i * 1_000_000, f"line {i}", {}) for i in range(3))
    return [s]


@pytest.mark.parametrize("value", [
    "86400",
    "9" * 400,  # float() of it is inf
    email.utils.formatdate(time.time() + 86400, usegmt=True),
])
def test_a_day_long_retry_after_keeps_the_source_down_minutes_not_a_day(value: str, monkeypatch: Any) -> None:
    clock = [1000.0]
    monkeypatch.setattr(http_mod.time, "monotonic", lambda: clock[0])
    with FakeLoki(_streams()) as server:
        server.faults.append((429, "throttled by proxy", {"Retry-After": value}))
        src = LokiSource(LokiConfig(url=server.url), backoff_s=0.001, max_backoff_s=0.002)
        with pytest.raises(SourceUnavailable, match="429"):
            src.query_logs('{service="payments"}', T0 / 1e9, T0 / 1e9 + 60)
        clock[0] += getattr(http_mod, "MAX_RETRY_AFTER_S", 300) + 1
        assert len(src.query_logs('{service="payments"}', T0 / 1e9, T0 / 1e9 + 60)) == 3
    assert getattr(http_mod, "MAX_RETRY_AFTER_S", 300) <= 600


def test_an_http_date_in_the_past_is_retried_at_once() -> None:
    past = email.utils.formatdate(time.time() - 3600, usegmt=True)
    with FakeLoki(_streams()) as server:
        server.faults.append((503, "restarting", {"Retry-After": past}))
        src = LokiSource(LokiConfig(url=server.url), backoff_s=0.001, max_backoff_s=0.002)
        assert len(src.query_logs('{service="payments"}', T0 / 1e9, T0 / 1e9 + 60)) == 3


def test_an_asctime_retry_after_is_read_as_gmt_whatever_the_local_zone(monkeypatch: Any) -> None:
    from alerts.receivers.http import retry_after_s
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        now = 1_795_165_200.0
        value = time.asctime(time.gmtime(now + 30))  # e.g. "Fri Nov 20 09:00:30 2026"
        assert retry_after_s(value, now) == pytest.approx(30.0)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
