"""The service graph seen in traces: caller -> callee edges with call counts and latencies.

Built by the trace detector (baseline and current side by side) and read by the
root-cause ranking (correlators/rca.py), which uses it to tell where latency is added
and which way errors travel.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd


@dataclass
class EdgeStats:
    calls_baseline: int = 0
    calls_current: int = 0
    edge_ms_baseline: float | None = None  # median client-span self time (network + queue)
    edge_ms_current: float | None = None
    callee_ms_baseline: float | None = None  # median duration of the callee's server span
    callee_ms_current: float | None = None


@dataclass
class ServiceGraph:
    """Caller -> callee edges seen in traces, with their latencies."""

    edges: dict[tuple[str, str], EdgeStats] = field(default_factory=dict)

    @property
    def services(self) -> set[str]:
        return {s for e in self.edges for s in e}

    def callees(self, service: str) -> set[str]:
        return {b for a, b in self.edges if a == service and b != service}

    def callers(self, service: str) -> set[str]:
        return {a for a, b in self.edges if b == service and a != service}

    def to_dict(self) -> dict:
        return {f"{a}->{b}": vars(e) for (a, b), e in self.edges.items()}



def build_graph(b: pd.DataFrame, c: pd.DataFrame) -> ServiceGraph:
    """Edges of the prepared baseline `b` and current `c` span tables (see spans.prepare)."""
    g = ServiceGraph()
    for frame, which in ((b, "baseline"), (c, "current")):
        rem = frame[frame["remote_child"]]
        if rem.empty:
            continue
        # Aggregated per edge in one pass: a frame sliced per edge cost more than the rest.
        callee = rem.groupby(["parent_service", "service"])["dur_ms"].agg(["size", "median"])
        for (a, z), n, ms in zip(callee.index, callee["size"].tolist(), callee["median"].tolist(), strict=True):
            e = g.edges.setdefault((a, z), EdgeStats())
            setattr(e, f"calls_{which}", int(n))
            setattr(e, f"callee_ms_{which}", float(ms))
        cl = frame[frame["is_client"]]
        edge = cl.groupby(["service", "callee"])["self_ms"].median()
        for (a, z), ms in zip(edge.index, edge.tolist(), strict=True):
            e = g.edges.setdefault((a, z), EdgeStats())
            setattr(e, f"edge_ms_{which}", float(ms))
    return g

