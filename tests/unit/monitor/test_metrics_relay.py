"""The daemon's /metrics when cycles run in sweep worker processes: what a worker's
registry changed reaches the daemon's, counters add up, and a model's gauges are what
its last successful cycle left, whichever process ran it (monitor/metrics_relay.py)."""
from __future__ import annotations

from prometheus_client import generate_latest

from monitor.metrics import VigilMetrics
from monitor.metrics_relay import MetricsTap, apply


def series(m: VigilMetrics, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    out = {}
    for family in m.registry.collect():
        for s in family.samples:
            if s.name == name:
                out[tuple(sorted(s.labels.items()))] = s.value
    return out


def drift(m: VigilMetrics, model: str) -> set[str]:
    return {dict(k)["feature"] for k in series(m, "vigil_feature_drift") if dict(k)["model"] == model}


def test_counters_add_up_across_takes_and_are_never_sent_twice() -> None:
    worker, daemon = VigilMetrics(), VigilMetrics()
    tap = MetricsTap(worker)
    worker.findings.labels("a", "kpi_drop").inc(3)
    apply(daemon, tap.take({"a"}))
    apply(daemon, tap.take({"a"}))  # nothing new: nothing added
    worker.findings.labels("a", "kpi_drop").inc(2)
    worker.rollbacks.labels("b", "done").inc()
    apply(daemon, tap.take({"a", "b"}))
    assert series(daemon, "vigil_findings_total") == {(("kind", "kpi_drop"), ("model", "a")): 5.0}
    assert series(daemon, "vigil_rollbacks_total")[(("model", "b"), ("status", "done"))] == 1.0


def test_a_models_gauges_are_replaced_whole_by_its_last_successful_cycle() -> None:
    worker, daemon = VigilMetrics(), VigilMetrics()
    tap = MetricsTap(worker)
    worker.set_feature_drift("a", [("f1", "psi", 0.4), ("f2", "psi", 0.3)], {"f1", "f2"})
    worker.set_feature_drift("b", [("g1", "psi", 0.5)], {"g1"})
    apply(daemon, tap.take({"a", "b"}))
    assert (drift(daemon, "a"), drift(daemon, "b")) == ({"f1", "f2"}, {"g1"})
    worker.set_feature_drift("a", [("f2", "psi", 0.35)], {"f2"})  # f1 stopped drifting
    apply(daemon, tap.take({"a"}))
    assert (drift(daemon, "a"), drift(daemon, "b")) == ({"f2"}, {"g1"})
    assert series(daemon, "vigil_feature_drift")[(("feature", "f2"), ("model", "a"), ("statistic", "psi"))] == 0.35


def test_a_failed_cycle_leaves_the_models_gauges_as_they_were() -> None:
    worker, daemon = VigilMetrics(), VigilMetrics()
    tap = MetricsTap(worker)
    worker.set_model_state("a", "critical")
    apply(daemon, tap.take({"a"}))
    worker.set_model_state("a", None)  # half a cycle, then it failed: not reported
    apply(daemon, tap.take(set()))
    assert series(daemon, "vigil_model_state") == {(("model", "a"),): 2.0}


def test_a_model_moving_between_processes_leaves_no_stale_drift_series() -> None:
    daemon, worker = VigilMetrics(), VigilMetrics()
    daemon.set_feature_drift("a", [("f1", "psi", 0.4)], {"f1"})  # a cycle on the daemon's threads
    worker.set_feature_drift("a", [("f2", "psi", 0.3)], {"f2"})  # the next one in a worker
    apply(daemon, MetricsTap(worker).take({"a"}))
    assert drift(daemon, "a") == {"f2"}
    daemon.set_feature_drift("a", [("f3", "psi", 0.5)], {"f3"})  # and back on the daemon's threads
    assert drift(daemon, "a") == {"f3"}


def test_the_daemons_own_gauges_are_never_overwritten_by_a_workers_copy() -> None:
    worker, daemon = VigilMetrics(), VigilMetrics()
    daemon.outbox_pending.set(42)  # the daemon's sender counts the outbox
    daemon.audit_head_seq.set(500)
    daemon.source_up.labels("prometheus").set(0)  # the daemon's own probe saw it down
    worker.source_up.labels("prometheus").set(1)  # (source states come through SourceHealth.adopt)
    apply(daemon, MetricsTap(worker).take({"a"}))  # a fresh worker: its copies read 0 or stale
    text = generate_latest(daemon.registry)
    assert b"vigil_outbox_pending 42.0" in text and b"vigil_audit_head_seq 500.0" in text
    assert b'vigil_source_up{source="prometheus"} 0.0' in text


def test_a_kpi_or_performance_series_relayed_from_a_worker_is_dropped_by_the_daemons_next_cycle() -> None:
    worker, daemon = VigilMetrics(), VigilMetrics()
    tap = MetricsTap(worker)
    worker.publish_kpis("a", {"ctr": (0.05, 0.06)})
    worker.set_performance("a", {"realised": {"accuracy": 0.9}}, 0.8, 60.0)
    apply(daemon, tap.take({"a"}))
    assert series(daemon, "vigil_kpi_value") and series(daemon, "vigil_model_performance")
    daemon.publish_kpis("a", {})  # the daemon's own cycle of it: the KPI no longer answers
    daemon.set_performance("a", {}, None, None)
    for name in ("vigil_kpi_value", "vigil_kpi_baseline", "vigil_model_performance", "vigil_label_coverage_ratio"):
        assert series(daemon, name) == {}, name
