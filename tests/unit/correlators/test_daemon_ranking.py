"""The daemon's correlate stage ranks services with the function and parameters the RCA
benchmarks measure, and carries what the diagnosis lacked into the incident's causes."""
from __future__ import annotations

from correlators.causes import CorrelationSettings
from correlators.incident import CauseKind
from detectors.records import Direction, Finding, FindingKind
from detectors.traces import EdgeStats, ServiceGraph
from monitor.cycle.correlate import correlate
from monitor.cycle.plan import CycleStart
from monitor.types import Detection, ServiceEvidence, Window

W = Window(t=1300.0, start=1000.0, baseline_start=0.0, baseline_end=1000.0)


def _f(kind: FindingKind, service: str | None, entity: str, stat: str, score: float, **ev: object) -> Finding:
    return Finding(kind=kind, entity=entity, value=2.0, threshold=1.0, window_start=W.start, window_end=W.t,
                   onset=1100.0, score=score, model="m", service=service, direction=Direction.UP,
                   statistic=stat, evidence=dict(ev))


def test_a_service_metric_finding_is_ranked_without_logs_or_traces_and_the_gap_is_reported() -> None:
    found = Detection(findings=[_f(FindingKind.KPI_DROP, None, "ctr", "kpi_change_pct", 0.9),
                                _f(FindingKind.METRIC_ANOMALY, "db", "db: latency_p99", "robust_z", 0.8,
                                   metric="latency_p99")])
    c = correlate("m", found, ["api", "db"], CycleStart(), [], W, CorrelationSettings())
    assert c.incident is not None
    services = [x for x in c.incident.causes if x.kind is CauseKind.SERVICE]
    assert services[0].entity == "db"
    assert services[0].evidence["lacking"] == ["no logs in the window", "no traces in the window"]


def test_the_daemon_demotes_a_caller_its_callee_explains() -> None:
    graph = ServiceGraph({("api", "db"): EdgeStats(calls_current=10)})
    evidence = ServiceEvidence([], [], graph, {"api": {"traces"}, "db": {"traces"}})
    found = Detection(findings=[_f(FindingKind.KPI_DROP, None, "ctr", "kpi_change_pct", 0.9),
                                _f(FindingKind.METRIC_ANOMALY, "api", "api: latency", "robust_z", 0.9,
                                   metric="latency_p99"),
                                _f(FindingKind.METRIC_ANOMALY, "db", "db: latency", "robust_z", 0.6,
                                   metric="latency_p99")], services=evidence)
    c = correlate("m", found, ["api", "db"], CycleStart(), [], W, CorrelationSettings())
    assert c.incident is not None
    services = [x for x in c.incident.causes if x.kind is CauseKind.SERVICE]
    assert [x.entity for x in services] == ["db", "api"]
    assert services[1].evidence["explained_by"] == "db"
    assert services[0].evidence["lacking"] == ["no logs in the window"]
