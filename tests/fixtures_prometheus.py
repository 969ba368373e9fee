"""A real Prometheus backfilled with known data, shared by one test module.

The fixtures are registered for every test by tests/conftest.py (`pytest_plugins`).

`prom_data` describes exactly what was written (so tests compute expectations from
it, not from constants); `prometheus_url` backfills it into a LocalPrometheus (one
per module) and skips with the install command when Prometheus is not installed.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from monitor.replay.local_prometheus import LocalPrometheus, PrometheusNotInstalled, find_binaries
from monitor.replay.openmetrics import OpenMetricsWriter

T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z
STEP = 15.0
N = 61  # 15 minutes at 15 s
COUNTER_RATE = 5.0  # http_requests_total grows by this per second
HIST_BOUNDS = [0.1, 0.25, 0.5, 1.0, 2.5]
HIST_INCREMENTS = [80, 60, 40, 12, 7, 1]  # per step, per bucket (last: above 2.5 s)
LONG_STEP = 1.0
LONG_N = 25_001  # more than two requests' worth of points at 1 s (Prometheus caps at 11,000)


@dataclass
class PromData:
    """What the fixture file holds; the arrays are the exact values written."""

    t0: float = T0
    step: float = STEP
    timestamps: np.ndarray = field(default_factory=lambda: T0 + np.arange(N) * STEP)
    latency: dict[str, np.ndarray] = field(default_factory=dict)  # pod -> model_latency_seconds
    kv_cache: np.ndarray = field(default_factory=lambda: np.empty(0))  # vllm:gpu_cache_usage_perc
    counter: np.ndarray = field(default_factory=lambda: np.empty(0))  # http_requests_total
    counter_rate: float = COUNTER_RATE
    hist_bounds: list[float] = field(default_factory=lambda: list(HIST_BOUNDS))
    hist_increments: list[int] = field(default_factory=lambda: list(HIST_INCREMENTS))
    special: np.ndarray = field(default_factory=lambda: np.empty(0))  # odd_values: NaN/+Inf/-Inf
    long_timestamps: np.ndarray = field(default_factory=lambda: np.empty(0))
    long_values: np.ndarray = field(default_factory=lambda: np.empty(0))

    @property
    def end(self) -> float:
        return float(self.timestamps[-1])


def write_fixture(path: Path) -> PromData:
    rng = np.random.default_rng(7)
    d = PromData()
    ts = d.timestamps
    w = OpenMetricsWriter()
    for pod in ("recsys-0", "recsys-1"):
        d.latency[pod] = np.round(rng.gamma(2.0, 0.05, N), 6)
        w.add(
            "model_latency_seconds",
            {"service": "recsys", "pod": pod},
            ts,
            d.latency[pod],
            help="p50 latency per pod",
        )
    d.kv_cache = np.round(rng.uniform(0.2, 0.99, N), 4)
    w.add("vllm:gpu_cache_usage_perc", {"pod": "vllm-0", "model_name": 'llama "8b"'}, ts, d.kv_cache)
    w.add("errors_ratio", {"service": "recsys"}, ts, np.zeros(N))
    d.counter = COUNTER_RATE * (ts - T0)
    w.add("http_requests_total", {"service": "recsys", "code": "200"}, ts, d.counter, type="counter")
    per_step = np.array(HIST_INCREMENTS, dtype=np.float64)
    k = np.arange(N, dtype=np.float64)[:, None]
    cumulative = np.cumsum(per_step)[None, :] * k  # T x (bounds + Inf), cumulative per le
    w.add_histogram(
        "request_duration_seconds",
        {"service": "recsys"},
        ts,
        HIST_BOUNDS,
        cumulative[:, :-1],
        sums=k[:, 0] * 17.5,
        counts=cumulative[:, -1],
    )
    d.special = np.array([1.5, np.nan, np.inf, -np.inf, 2.5])
    w.add("odd_values", {}, ts[:5], d.special, skip_nan=False)
    d.long_timestamps = T0 + np.arange(LONG_N) * LONG_STEP
    d.long_values = np.round(np.sin(np.arange(LONG_N) / 100.0), 6)
    w.add("long_gauge", {"service": "recsys"}, d.long_timestamps, d.long_values)
    w.write(path)
    return d


@pytest.fixture(scope="module")
def prom_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[PromData, Path]:
    path = tmp_path_factory.mktemp("om") / "metrics.om"
    return write_fixture(path), path


@pytest.fixture(scope="module")
def prometheus_url(
    prom_data: tuple[PromData, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    _, om_path = prom_data
    with running_prometheus(om_path, tmp_path_factory.mktemp("prometheus")) as url:
        yield url


@contextmanager
def running_prometheus(om_path: Path, data_dir: Path) -> Iterator[str]:
    """A real Prometheus on 127.0.0.1 backfilled from `om_path`; skips the test when
    Prometheus is not installed; stopped on exit."""
    try:
        find_binaries()
    except PrometheusNotInstalled as e:
        pytest.skip(str(e))
    prom = LocalPrometheus(om_path, data_dir)
    url = prom.start()
    try:
        yield url
    finally:
        prom.stop()
