"""A given call graph (a service map) joined with the traces' graph: on a metrics-only
system it is what lets a callee's anomaly explain its caller's, so the top service flips
from the loudest victim to the cause; and an adjacency matrix reads as its edges."""
from __future__ import annotations

import pytest

from correlators.call_graph import adjacency_edges, given_graph, merge_graphs
from correlators.services import ServiceSignals, rank_services
from detectors.records import Direction, Finding, FindingKind
from detectors.traces import EdgeStats, ServiceGraph


def _metric(service: str, metric: str, score: float, onset: float = 100.0) -> Finding:
    return Finding(kind=FindingKind.METRIC_ANOMALY, entity=f"{service}: {metric}", value=1.0, threshold=0.5,
                   window_start=0.0, window_end=300.0, onset=onset, score=score, service=service,
                   direction=Direction.UP, statistic="robust_z", message=f"{service} {metric} rose",
                   evidence={"metric": metric})


# checkout's latency rose a lot, because payments (which it calls) is saturated: a smaller
# anomaly, but the cause. No traces: only a given graph says checkout calls payments.
CASE = [_metric("checkout", "latency_p99_seconds", 0.9), _metric("payments", "cpu_saturation", 0.6),
        _metric("search", "cpu_saturation", 0.05)]
MAP = [("frontend", "checkout"), ("checkout", "payments"), ("frontend", "search")]


def test_a_given_graph_puts_the_callee_that_explains_its_caller_first() -> None:
    without = rank_services(ServiceSignals(metric_findings=CASE), alert_time=0.0)
    with_map = rank_services(ServiceSignals(metric_findings=CASE, given_graph=given_graph(MAP)), alert_time=0.0)
    assert [c.entity for c in without][:2] == ["checkout", "payments"]
    assert [c.evidence["explained_by"] for c in without][:2] == [None, None]
    assert [c.entity for c in with_map][:2] == ["payments", "checkout"]
    assert with_map[1].evidence["explained_by"] == "payments"
    assert "may come from payments" in with_map[1].explanation
    # The map's services are candidates too, so the ranking is complete.
    assert {c.entity for c in with_map} == {"frontend", "checkout", "payments", "search"}


def test_a_given_graph_joins_the_traced_one_rather_than_replacing_it() -> None:
    """Traces showed frontend -> checkout only; the map adds checkout -> payments (a call
    too rare for the window's traces). The traced edge keeps what the spans measured."""
    traced = ServiceGraph({("frontend", "checkout"): EdgeStats(calls_current=40, edge_ms_current=3.0)})
    merged = merge_graphs(traced, given_graph(MAP))
    assert set(merged.edges) == set(MAP)
    assert merged.edges[("frontend", "checkout")].calls_current == 40
    assert traced.edges.keys() == {("frontend", "checkout")}  # the traces' graph is left as it was
    ranked = rank_services(ServiceSignals(metric_findings=CASE, graph=traced, given_graph=given_graph(MAP)), 0.0)
    assert ranked[0].entity == "payments"
    only_traced = rank_services(ServiceSignals(metric_findings=CASE, graph=traced), 0.0)
    assert only_traced[0].entity == "checkout"


def test_an_adjacency_matrix_reads_row_calls_column() -> None:
    rows = [["", "api", "db", "cache"], ["api", "0", "1.0", "1"], ["db", "0", "0", "0"], ["cache", "0", "", "0"], []]
    assert adjacency_edges(rows) == [("api", "db"), ("api", "cache")]


@pytest.mark.parametrize(("rows", "what"), [
    ([], "empty, expected an adjacency matrix"),
    ([["", "api", ""], ["api", "0", "0"]], "the header row must name every callee column"),
    ([["", "api", "db"], ["api", "0"]], "row 2 (api) has 1 cells, expected 2"),
    ([["", "api", "db"], ["api", "0", "yes"]], "row 2 (api), column db: 'yes' is not a number"),
    ([["", "api"], [" ", "1"]], "row 2 names no caller"),
])
def test_a_bad_matrix_names_the_file_the_row_and_the_column(rows: list[list[str]], what: str) -> None:
    with pytest.raises(ValueError, match="graphs/x.csv") as e:
        adjacency_edges(rows, "graphs/x.csv")
    assert what in str(e.value)
