"""Which service(s) each finding speaks about, and how strongly: the first step of
`correlators.rca.rank_root_causes`.

Latency counts where it is added: an edge-time finding (time between a caller's
client span and the callee's server span) is shared between its two ends by how
many of each end's edges slowed, since a fault on one pod slows every edge into
it. An error line that names another known service ("No instances available for
X", a URL with X's host) is the client reporting a failed call, so part of its
weight goes to the named service(s).
"""
from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from detectors.records import Finding, FindingKind
from detectors.traces.graph import ServiceGraph

Evidence = list[tuple[float, Finding]]  # (weighted score, finding)
PerModality = dict[tuple[str | None, str], Evidence]  # (service, modality) -> evidence

_MODALITY = {FindingKind.METRIC_ANOMALY: "metrics", FindingKind.LOG_ANOMALY: "logs",
             FindingKind.TRACE_ANOMALY: "traces", FindingKind.GPU_SATURATION: "metrics",
             FindingKind.SLO_BREACH: "metrics"}
# How much one finding of each statistic says about its own service being the cause.
_WEIGHT = {
    "new_error_template": 1.0, "error_template_rate": 0.9, "error_burst": 0.7, "vanished_template": 0.8,
    "broken_sequence": 0.8,
    "new_template": 0.3, "self_time_ms_p50": 1.0, "error_origin_rate": 1.0, "calls_vanished": 0.4,
    "calls_appeared": 0.4, "edge_time_ms_p50": 1.0, "range_ratio": 0.8, "service_vanished": 1.0,
}
ERROR_STATS = {"new_error_template", "error_template_rate", "error_burst", "error_origin_rate"}


def attribute(findings: list[Finding], trace_findings: list[Finding], graph: ServiceGraph, services: set[str],
              named_share: float) -> PerModality:
    """Each finding's weighted score, on the service(s) it speaks about, per modality.
    An error naming other services keeps `named_share` of its weight and gives as much
    to the services it names (shared among them)."""
    per: PerModality = defaultdict(list)
    edge_share = _edge_shares(trace_findings, graph)
    name_rx = _name_pattern(services)
    for f in findings:
        mod = _MODALITY.get(f.kind, "metrics")
        w = _WEIGHT.get(f.statistic, 0.7)
        if f.statistic == "edge_time_ms_p50":
            caller, callee = f.evidence.get("caller"), f.evidence.get("callee")
            # The endpoint with the larger support takes the full score; the other end
            # takes the ratio of the two supports.
            sa = edge_share.get(caller, 0.0) if caller is not None else 0.0
            sb = edge_share.get(callee, 1.0) if callee is not None else 1.0
            top = max(sa, sb, 1e-9)
            per[(callee, mod)].append((w * f.score * sb / top, f))
            if caller:
                per[(caller, mod)].append((w * f.score * sa / top, f))
            continue
        named = _named_services(f, services, name_rx) if f.statistic in ERROR_STATS else []
        if named:
            # An error that names another service ("No instances available for X",
            # "500 from http://X:8080/...", "connection refused: X") is the client
            # reporting a failed call to X: it says as much about X as about the client.
            per[(f.service, mod)].append((w * f.score * named_share, f))
            for n in named:
                per[(n, mod)].append((w * f.score * named_share / len(named), f))
            continue
        per[(f.service, mod)].append((w * f.score, f))
    return per


def _name_pattern(services: Iterable[str]) -> re.Pattern[str] | None:
    names = sorted((s for s in services if len(s) >= 3), key=len, reverse=True)
    if not names:
        return None
    return re.compile(r"(?<![\w.-])(" + "|".join(re.escape(n) for n in names) + r")(?![\w-])")


def _named_services(f: Finding, services: set[str], rx: re.Pattern[str] | None) -> list[str]:
    """Other known services named in a finding's sample lines (as host names or in the text)."""
    if rx is None:
        return []
    text = "\n".join(str(x) for x in f.evidence.get("samples", ()))
    return sorted({m for m in rx.findall(text) if m != f.service and m in services})


def _edge_shares(trace_findings: list[Finding], graph: ServiceGraph,
                 min_ratio: float = 1.5, min_added_ms: float = 1.0) -> dict[str, float]:
    """Support for each service from slowed edges touching it (in and out).

    A network fault on one pod slows every edge that touches that pod, so the
    endpoint whose edges are slowed all round is the likelier culprit than the
    other end of one slow edge. An edge counts as slowed when it has a finding, or
    when its median edge time rose by `min_ratio` (too few calls for a test).
    """
    slowed: set[tuple[Any, Any]] = {(f.evidence.get("caller"), f.evidence.get("callee")) for f in trace_findings
                                    if f.statistic == "edge_time_ms_p50"}
    touching: dict[str, set[tuple[Any, Any]]] = defaultdict(set)
    for (a, b), e in graph.edges.items():
        if a == b or not e.calls_current:
            continue
        touching[a].add((a, b))
        touching[b].add((a, b))
        eb, ec = e.edge_ms_baseline, e.edge_ms_current
        if eb is not None and ec is not None and ec >= min_ratio * eb and ec - eb >= min_added_ms:
            slowed.add((a, b))
    for a, b in slowed:
        touching[a].add((a, b))
        touching[b].add((a, b))
    # Support = share of its edges slowed x number of slowed edges: the endpoint that
    # every slow edge shares outranks the far ends that each touch one slow edge.
    return {s: len(edges & slowed) ** 2 / len(edges) for s, edges in touching.items() if edges}
