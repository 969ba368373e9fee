"""vLLM renamed its KV-cache gauge: `vllm:gpu_cache_usage_perc` is deprecated and no longer
emitted by default; current releases expose `vllm:kv_cache_usage_perc` (still 0..1).
Against a real Prometheus holding only the new name, a KV cache full for 15 minutes must
still be a GPU saturation finding, not silence; the old name must keep working."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from detectors.base import NoState
from detectors.gpu import GpuDetector, GpuParams, GpuSignal
from monitor.config import PrometheusConfig
from monitor.cycle.gather import gpu_queries
from monitor.replay.openmetrics import OpenMetricsWriter
from monitor.sources.prometheus import PrometheusSource
from tests.fixtures_prometheus import running_prometheus

T0 = 1_700_000_000.0
STEP = 15.0
N = 61  # 15 minutes
TS = T0 + np.arange(N) * STEP
END = float(TS[-1])


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusSource]:
    path: Path = tmp_path_factory.mktemp("om") / "metrics.om"
    w = OpenMetricsWriter()
    full = np.full(N, 0.98)
    w.add("vllm:kv_cache_usage_perc", {"pod": "vllm-new-0", "model_name": "ranker"}, TS, full)  # vLLM >= 0.10
    w.add("vllm:gpu_cache_usage_perc", {"pod": "vllm-old-0", "model_name": "ranker"}, TS, full)  # older vLLM
    w.write(path)
    with running_prometheus(path, tmp_path_factory.mktemp("prometheus")) as url:
        src = PrometheusSource(PrometheusConfig(url=url, timeout_s=5, retries=1, step=STEP))
        yield src
        src.close()


def _kv_findings(source: PrometheusSource, selector: str) -> list:
    series = source.query_range(gpu_queries(selector)["kv_cache_ratio"], T0, END, name="gpu kv_cache_ratio")
    detector = GpuDetector(GpuParams(GpuSignal("kv_cache_ratio", 0.95), min_duration=300, step=STEP))
    return detector.score(NoState(), series, T0, END)


@pytest.mark.integration
def test_a_full_kv_cache_under_vllms_current_metric_name_is_saturation(source: PrometheusSource) -> None:
    (f,) = _kv_findings(source, 'pod="vllm-new-0"')
    assert f.entity == "vllm-new-0" and f.value == pytest.approx(0.98)


@pytest.mark.integration
def test_the_deprecated_metric_name_still_counts(source: PrometheusSource) -> None:
    (f,) = _kv_findings(source, 'pod="vllm-old-0"')
    assert f.entity == "vllm-old-0"
