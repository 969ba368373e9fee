"""Which way is bad, from words in the metric's name: never from a list of metrics."""
from __future__ import annotations

import pytest

from detectors.metric_meaning import MetricClass, bad_direction, metric_class
from detectors.records import Direction


@pytest.mark.parametrize(("name", "cls"), [
    ("availability_Average", MetricClass.AVAILABILITY), ("PodSuccessRate(%)", MetricClass.AVAILABILITY),
    ("latency_p99", MetricClass.LATENCY), ("PodServerLatencyP90(s)", MetricClass.LATENCY),
    ("http_request_duration_seconds", MetricClass.LATENCY), ("error_rate", MetricClass.ERRORS),
    ("CpuUsageRate(%)", MetricClass.SATURATION), ("process_cpu_seconds_total", MetricClass.SATURATION),
    ("MemoryUsage(Mi)", MetricClass.SATURATION), ("requests_Sum", MetricClass.UNKNOWN),
    ("PodWorkload(Ops)", MetricClass.UNKNOWN), ("SyscallRead", MetricClass.UNKNOWN),
])
def test_metric_class_from_name_words(name: str, cls: MetricClass) -> None:
    assert metric_class(name) is cls


@pytest.mark.parametrize(("name", "cls"), [
    # exporters' own names (node, cAdvisor, kube-state-metrics, DCGM, Envoy)
    ("node_network_receive_errs_total", MetricClass.ERRORS), ("node_network_receive_drop_total", MetricClass.ERRORS),
    ("kube_deployment_status_replicas_unavailable", MetricClass.ERRORS), ("cache_misses_total", MetricClass.ERRORS),
    ("envoy_cluster_upstream_rq_timeout", MetricClass.ERRORS), ("DCGM_FI_DEV_FB_USED", MetricClass.SATURATION),
    ("kube_deployment_status_replicas_available", MetricClass.AVAILABILITY), ("error_count", MetricClass.ERRORS),
    # a histogram's observation count is traffic, a start time is no latency
    ("http_server_requests_seconds_count", MetricClass.UNKNOWN), ("process_start_time_seconds", MetricClass.UNKNOWN),
    ("vigil_last_cycle_timestamp_seconds", MetricClass.UNKNOWN),
    ("http_server_requests_seconds_bucket", MetricClass.LATENCY),
    ("envoy_cluster_upstream_rq_time_count", MetricClass.UNKNOWN), ("node_boot_time_seconds", MetricClass.UNKNOWN),
    # ... but a start that lasts is a duration, and words are whole where a prefix would mislead
    ("kubelet_pod_start_duration_seconds_bucket", MetricClass.LATENCY), ("pod_start_errors_total", MetricClass.ERRORS),
    ("mission_critical_requests_total", MetricClass.UNKNOWN), ("missing_values_total", MetricClass.UNKNOWN),
    ("dropout_rate", MetricClass.UNKNOWN), ("container_network_receive_packets_dropped_total", MetricClass.ERRORS),
])
def test_prometheus_naming_conventions(name: str, cls: MetricClass) -> None:
    assert metric_class(name) is cls


def test_bad_direction() -> None:
    assert bad_direction("availability") is Direction.DOWN
    assert bad_direction("latency_ms") is Direction.UP
    assert bad_direction("NetworkReceiveBytes") is Direction.BOTH
