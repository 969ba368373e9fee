"""Running generated dashboards' PromQL against a real Prometheus, the way Grafana would.

Shared by test_dashboards_promql.py (a fixture generated from the config) and
test_dashboards_demo.py (the demo scenario and its replay). Variables are expanded at
their defaults and Grafana's macros with the values given; a query "has data" when it
returns at least one finite value.
"""
from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from dashboards.builder import panel_queries, render, variable_defaults

_LABEL_VALUES = re.compile(r"^label_values\((.*),\s*(\w+)\)$")


def finite_values(result: list[dict[str, Any]]) -> list[float]:
    """Every finite value in a /query or /query_range result (vector or matrix)."""
    out: list[float] = []
    for series in result:
        points = series.get("values") or [series["value"]]
        out += [float(v) for _, v in points if math.isfinite(float(v))]
    return out


@dataclass
class PanelRun:
    where: str  # "<uid> panel <id> '<title>': <expr>"
    expr: str
    instant: bool
    status_code: int
    body: dict[str, Any]

    @property
    def error(self) -> str | None:
        if self.status_code != 200 or self.body.get("status") != "success":
            return f"{self.status_code} {self.body.get('error')}"
        return None

    @property
    def values(self) -> list[float]:
        return finite_values(self.body["data"]["result"]) if self.error is None else []

    def problem(self) -> str | None:
        """Why a user would see an error or "No data" on this panel, or None."""
        if self.error is not None:
            return f"{self.where} -> {self.error}"
        if not self.values:
            return f"{self.where} -> no data"
        return None


def run_panel_queries(client: httpx.Client, dashboards: Iterable[dict[str, Any]], *, start: float, end: float,
                      step: float, rate_interval: str, interval: str, range_: str) -> list[PanelRun]:
    """Every Prometheus query of every panel: instant ones at `end`, range ones over [start, end]."""
    runs: list[PanelRun] = []
    for d in dashboards:
        variables = variable_defaults(d)
        for q in panel_queries(d):
            if q.datasource_type != "prometheus":
                continue
            expr = render(q.expr, variables, rate_interval=rate_interval, interval=interval, range_=range_)
            assert "$" not in expr, f"unexpanded variable in {expr}"
            if q.instant:
                resp = client.post("/api/v1/query", data={"query": expr, "time": end})
            else:
                resp = client.post("/api/v1/query_range",
                                   data={"query": expr, "start": start, "end": end, "step": step})
            runs.append(PanelRun(f"{d['uid']} panel {q.panel_id} {q.panel_title!r}: {expr}", expr, q.instant,
                                 resp.status_code, resp.json()))
    return runs


@dataclass
class VariableQuery:
    dashboard: str
    name: str
    selector: str
    label: str


def variable_queries(d: dict[str, Any]) -> Iterator[VariableQuery]:
    """The dashboard's label_values(selector, label) variables, other variables expanded at their defaults."""
    variables = variable_defaults(d)
    for v in d["templating"]["list"]:
        if v["type"] != "query":
            continue
        m = _LABEL_VALUES.match(render(v["query"], variables))
        assert m, v["query"]
        yield VariableQuery(d["uid"], v["name"], m.group(1), m.group(2))


def label_values(client: httpx.Client, q: VariableQuery, start: float, end: float) -> list[str]:
    """What Grafana offers for the variable: /api/v1/label/<label>/values?match[]=selector."""
    resp = client.get(f"/api/v1/label/{q.label}/values", params={"match[]": q.selector, "start": start, "end": end})
    assert resp.status_code == 200, resp.text
    return list(resp.json()["data"])
