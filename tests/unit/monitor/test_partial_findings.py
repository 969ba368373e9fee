"""Findings whose entity is not the signal's name (a GPU node, a service's metric) read from a
partial answer: the page must say so as it does for a KPI ("read from a partial answer: <why>"),
or on-call takes a store's missing share for the GPU's or the service's own number."""
from __future__ import annotations

import dataclasses

import numpy as np

from detectors.records import FindingKind, Series, partial_read
from monitor.cycle.detect import detect
from monitor.cycle.gather import service_metric_entity
from monitor.types import ServiceMetricSignals
from tests.helpers_vigil import T0, StubPrometheus, make_config, make_vigil, model_config
from tests.unit.monitor.test_service_metrics_cycle import raw_with, request, series

WHY = "store 10.0.3.7:10901: connection refused"


class _SaturatedGpuPartial(StubPrometheus):
    """n1's GPU at 99 % for the whole window, read from an answer a store missed."""

    def query_range(self, query, start, end, step=None, *, name=None):
        if not query.startswith("DCGM_FI_DEV_GPU_UTIL"):
            return super().query_range(query, start, end, step, name=name)
        ts = np.arange(np.ceil(start / 60) * 60, end + 1e-9, 60.0)
        return [Series(query, {"Hostname": "n1", "gpu": "0"}, ts, np.full(len(ts), 99.0), WHY)]


def test_a_gpu_saturation_read_from_a_partial_answer_says_so(tmp_path) -> None:
    cfg = make_config(tmp_path, models=[model_config(gpu={"selector": 'job="dcgm"'})])
    report = make_vigil(cfg, prometheus=_SaturatedGpuPartial()).run_cycle("recommender", T0)
    [gpu] = [f for f in report.findings if f.kind == FindingKind.GPU_SATURATION]
    assert partial_read(dataclasses.asdict(gpu)) == WHY


def test_a_root_cause_metric_read_from_a_partial_answer_says_so() -> None:
    sig = ServiceMetricSignals(names=["availability", "cpu_usage"], series=[
        series("availability", "preprocess", 0.999, drop_to=0.6, seed=2),
        series("cpu_usage", "preprocess", 0.4, seed=4), series("cpu_usage", "api", 0.4, drop_to=0.9, seed=3)])
    raw = raw_with(sig)
    raw.gaps.read_partially(service_metric_entity("availability"), WHY)
    found = {f.entity: partial_read(dataclasses.asdict(f)) for f in detect(raw, request()).findings
             if f.kind is FindingKind.METRIC_ANOMALY}
    assert found == {"preprocess: availability": WHY, "api: cpu_usage": ""}  # cpu_usage was read whole


def test_an_anomaly_of_a_labelled_kpi_read_from_a_partial_answer_says_so(tmp_path) -> None:
    """A KPI aggregated `sum by (model)` keeps its label: its anomaly finding is named
    `ctr{model="recommender"}`, not `ctr`, and the signal-name marks never reached it."""
    from monitor.types import MetricSignal, RawSignals
    from tests.helpers_vigil import CTR_QUERY
    from tests.unit.monitor.test_cycle_stages import W, detect_request

    ts = np.arange(W.t - 86400, W.t + 1, 60.0)
    v = 0.05 + np.random.default_rng(3).normal(0, 0.0005, len(ts))
    v[ts >= W.t - 600] = 0.025
    day = Series("ctr", {"model": "recommender"}, ts, v, WHY)
    raw = RawSignals(kpis=[MetricSignal("ctr", CTR_QUERY, day.between(W.baseline_start, W.t), history=day)])
    raw.gaps.read_partially("ctr", WHY)  # as gather marks it
    found = detect(raw, detect_request(make_config(tmp_path)))
    anomalies = [f for f in found.findings if f.kind is FindingKind.METRIC_ANOMALY]
    assert anomalies and {f.entity for f in anomalies} == {'ctr{model="recommender"}'}
    assert {partial_read(dataclasses.asdict(f)) for f in anomalies} == {WHY}
