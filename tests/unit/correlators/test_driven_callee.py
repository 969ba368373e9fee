"""A callee sent more requests than usual is driven by its callers: its slowness under
that load does not explain away a caller's own failures."""
from __future__ import annotations

from correlators.call_graph import given_graph
from correlators.services import ServiceSignals, rank_services
from detectors.records import Direction, Finding, FindingKind


def _metric(service: str, metric: str, score: float, direction: Direction = Direction.UP) -> Finding:
    return Finding(kind=FindingKind.METRIC_ANOMALY, entity=f"{service}: {metric}", value=1.0, threshold=0.5,
                   window_start=0.0, window_end=300.0, onset=100.0, score=score, service=service,
                   direction=direction, statistic="robust_z", message=f"{service} {metric} moved",
                   evidence={"metric": metric})


# search fails a share of its requests; the error path fetches from storage, which it
# seldom calls, so storage's request count and latency jump with search's failures.
MAP = [("frontend", "search"), ("search", "storage")]
FAILING = [_metric("search", "failed_requests", 0.95), _metric("storage", "latency_p99", 0.85)]


def test_a_callee_whose_requests_surged_explains_no_caller() -> None:
    driven = rank_services(ServiceSignals(metric_findings=[*FAILING, _metric("storage", "requests_Sum", 0.5)],
                                          given_graph=given_graph(MAP)), alert_time=0.0)
    assert [c.entity for c in driven][:2] == ["search", "storage"]
    assert driven[0].evidence["explained_by"] is None


def test_a_callee_at_its_usual_traffic_still_explains_its_caller() -> None:
    quiet = rank_services(ServiceSignals(metric_findings=FAILING, given_graph=given_graph(MAP)), alert_time=0.0)
    assert [c.entity for c in quiet][:2] == ["storage", "search"]
    assert quiet[1].evidence["explained_by"] == "storage"


def test_fewer_requests_at_a_callee_is_no_sign_it_is_driven() -> None:
    fewer = [*FAILING, _metric("storage", "requests_Sum", 0.5, Direction.DOWN)]
    ranked = rank_services(ServiceSignals(metric_findings=fewer, given_graph=given_graph(MAP)), alert_time=0.0)
    assert ranked[1].evidence["explained_by"] == "storage"
