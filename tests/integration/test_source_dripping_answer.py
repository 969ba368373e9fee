"""timeout_s bounds a source's whole answer, not each read of it: a backend or a wedged
proxy sending its answer a byte at a time must not hold a model's cycle (and the sweep's
thread) for minutes on a 1 s timeout."""
from __future__ import annotations

import time

import pytest

try:
    from tests.fakes.dripping import dripping_receiver
except ImportError:  # pytest put tests/ on sys.path, not the repo root
    from fakes.dripping import dripping_receiver
from monitor.config import LokiConfig
from monitor.sources.errors import SourceUnavailable
from monitor.sources.loki import LokiSource


def test_a_loki_dripping_its_answer_is_cut_at_timeout_s() -> None:
    with dripping_receiver(byte_every_s=0.25, length=40) as url:
        src = LokiSource(LokiConfig(url=url, timeout_s=1.0), retries=1, backoff_s=0.0, max_backoff_s=0.0)
        started = time.monotonic()
        with pytest.raises(SourceUnavailable, match="within 1 s"):
            src.query_logs('{service="a"}', 100.0, 160.0)
        took = time.monotonic() - started
    assert took < 4.0, f"two attempts on a 1 s timeout took {took:.1f} s"


def test_a_prometheus_dripping_its_answer_is_cut_at_timeout_s() -> None:
    from monitor.config import PrometheusConfig
    from monitor.sources.prometheus import PrometheusSource

    with dripping_receiver(byte_every_s=0.25, length=40) as url:
        src = PrometheusSource(PrometheusConfig(url=url, timeout_s=1.0, retries=1))
        started = time.monotonic()
        with pytest.raises(SourceUnavailable, match="within 1 s") as e:
            src.query_range("up", 100.0, 160.0)
        took = time.monotonic() - started
    assert took < 4.0, f"two attempts on a 1 s timeout took {took:.1f} s"
    assert not e.value.whole_source  # that query timed out; the next one may be answered


def test_an_mlflow_dripping_its_answer_is_cut_at_timeout_s() -> None:
    from monitor.sources.registry.rest import RestBackend

    with dripping_receiver(byte_every_s=0.25, length=40) as url:
        backend = RestBackend(url, timeout_s=1.0)
        started = time.monotonic()
        with pytest.raises(SourceUnavailable, match="within 1s"):
            backend.aliases("anomaly-detector")
        took = time.monotonic() - started
    assert took < 2.5, f"a call with a 1 s deadline took {took:.1f} s"


def test_a_loki_dripping_its_ready_answer_is_down_at_timeout_s() -> None:
    """The probe asks every source at start and every interval: a /ready answered a byte at
    a time held it 10 s on a 1 s timeout, then read the 200 as up."""
    from monitor.sources.errors import SourceStatus

    with dripping_receiver(byte_every_s=0.25, length=40) as url:
        src = LokiSource(LokiConfig(url=url, timeout_s=1.0))
        started = time.monotonic()
        state = src.ready()
        took = time.monotonic() - started
    assert took < 2.0, f"the readiness probe took {took:.1f} s on a 1 s timeout"
    assert state.status is SourceStatus.DOWN and "within 1 s" in state.detail, state
