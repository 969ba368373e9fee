"""The call graph the service ranking reads: the edges traces showed, joined with a given
one (a service map: `root_cause.call_graph` in the daemon, `graphs/<scenario>.csv` in a
Nezha-format benchmark folder). A metrics-only system has no traces, so only a given
graph lets a callee's anomaly explain its caller's (correlators/rca.py, rule 5).

Pure: edges in, a ServiceGraph out. Reading a graph file is the caller's (the config
loader's, the benchmark's) business; `adjacency_edges` takes its parsed rows.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

from detectors.traces.graph import EdgeStats, ServiceGraph

Edge = tuple[str, str]  # (caller, callee)


def given_graph(edges: Iterable[Edge]) -> ServiceGraph:
    """A service map as a ServiceGraph: its edges carry no call counts or latencies (the
    ranking's edge-time rule needs traced calls, so a given edge never counts there)."""
    g = ServiceGraph()
    for a, b in edges:
        g.edges[(a, b)] = EdgeStats()
    return g


def merge_graphs(traced: ServiceGraph, given: ServiceGraph) -> ServiceGraph:
    """The traced edges (with what the spans measured on them) and every given edge the
    traces did not show: a service map also holds calls too rare to appear in a window's
    traces, and traces hold calls a map drawn by hand left out."""
    if not given.edges:
        return traced
    if not traced.edges:
        return given
    out = ServiceGraph(dict(traced.edges))
    for e, stats in given.edges.items():
        out.edges.setdefault(e, stats)
    return out


def adjacency_edges(rows: Sequence[Sequence[str]], where: str = "graph") -> list[Edge]:
    """The edges of an adjacency matrix as parsed CSV rows: the header row names the
    callees (its first cell is blank or a label), each further row a caller then one cell
    per callee; a non-zero number means the row's service calls the column's (PetShop's
    `graphs/*.csv`). Raises ValueError naming `where`, the row and the column of a bad cell."""
    if not rows:
        raise ValueError(f"{where}: empty, expected an adjacency matrix (a header row of callees, then one row "
                         "per caller)")
    callees = [c.strip() for c in rows[0][1:]]
    if not callees or any(not c for c in callees):
        raise ValueError(f"{where}: the header row must name every callee column (an empty name found)")
    edges: list[Edge] = []
    for i, row in enumerate(rows[1:], start=2):
        if not row or not any(cell.strip() for cell in row):
            continue  # a trailing blank line
        caller = row[0].strip()
        if not caller:
            raise ValueError(f"{where}: row {i} names no caller in its first cell")
        if len(row) - 1 != len(callees):
            raise ValueError(f"{where}: row {i} ({caller}) has {len(row) - 1} cells, expected {len(callees)} "
                             "(one per header column)")
        for callee, cell in zip(callees, row[1:], strict=True):
            try:
                value = float(cell) if cell.strip() else 0.0
            except ValueError:
                raise ValueError(f"{where}: row {i} ({caller}), column {callee}: {cell!r} is not a number "
                                 "(0 = no call, non-zero = the row calls the column)") from None
            if value != 0:
                edges.append((caller, callee))
    return edges
