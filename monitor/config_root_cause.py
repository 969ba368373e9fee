"""`root_cause:` (global, or per model) the per-service metric series the root-cause
ranking reads: each a PromQL query returning one series per service, split by a label.

    root_cause:
      service_label: service            # the label that names the service in every query's result
      metrics:
        - name: http_errors
          query: sum by (service) (rate(http_requests_total{code=~"5.."}[5m]))
        - name: goodput
          query: sum by (service) (rate(http_requests_total{code!~"5.."}[5m]))
          meaning: availability          # else inferred from the name (detectors/metric_meaning.py)
      call_graph:                        # who calls whom, joined with what traces show
        - {caller: api, callee: preprocess}
      # or a file: call_graph: graphs/services.csv (an adjacency matrix, row calls column)

These series go through the same detector and ranking the RCA benchmarks measure
(detectors/service_metrics.py, correlators/services.py), judged against the normal
period before the window (`schedule.baseline`, frozen at onset while an incident is open).
The call graph lets a callee's anomaly explain its caller's (correlators/rca.py, rule 5)
on a system whose traces do not show the calls, or that has no traces at all.
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationInfo, field_validator, model_validator

from correlators.call_graph import Edge, adjacency_edges

LABEL_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
ServiceName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
Meaning = Literal["availability", "success", "latency", "errors", "saturation", "unknown"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServiceMetricConfig(_Model):
    """One per-service metric: `query` returns one series per service (by `service_label`)."""

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z_][A-Za-z0-9_:.\-]*$")
    query: str = Field(min_length=1)
    # Which way is bad: availability/success down; latency, errors, saturation up; unknown
    # both ways at half weight. None: from the words of `name` (detectors/metric_meaning.py).
    meaning: Meaning | None = None

    @property
    def metric_class(self) -> str | None:
        """The detector's class name ("success" is availability: both are bad when they fall)."""
        return "availability" if self.meaning == "success" else self.meaning


class CallEdge(_Model):
    """One call: `caller` calls `callee` (both as the services are named in the metrics'
    `service_label`, in the traces and in `services`)."""

    caller: ServiceName
    callee: ServiceName

    @model_validator(mode="after")
    def _not_a_self_call(self) -> CallEdge:
        if self.caller == self.callee:
            raise ValueError(f"a service calling itself ({self.caller}) says nothing about where a fault "
                             "started: expected a caller and a different callee")
        return self


class RootCauseConfig(_Model):
    service_label: str = Field("service", pattern=LABEL_NAME)
    metrics: list[ServiceMetricConfig] = Field(default_factory=list)
    # Who calls whom: a list of {caller, callee}, or the path (relative to the config file)
    # of a CSV adjacency matrix, row calls column (PetShop's graphs/*.csv). Joined with the
    # calls traces show; read once, when the config is loaded.
    call_graph: list[CallEdge] = Field(default_factory=list)

    @field_validator("call_graph", mode="before")
    @classmethod
    def _graph_file(cls, v: Any, info: ValidationInfo) -> Any:
        if not isinstance(v, str):
            return v
        base = (info.context or {}).get("base_dir", ".")
        return [{"caller": a, "callee": b} for a, b in read_graph_file(v, base)]

    @property
    def edges(self) -> list[Edge]:
        return [(e.caller, e.callee) for e in self.call_graph]

    @field_validator("metrics")
    @classmethod
    def _unique_names(cls, v: list[ServiceMetricConfig]) -> list[ServiceMetricConfig]:
        names = [m.name for m in v]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"expected unique metric names (they key the baselines), repeated: {', '.join(dupes)}")
        return v


def read_graph_file(path: str, base_dir: str = ".") -> list[Edge]:
    """The edges of a CSV adjacency matrix; ValueError naming the file and what is wrong."""
    if not path.strip():
        raise ValueError("expected a list of {caller, callee} or the path of a CSV adjacency matrix")
    p = Path(path) if Path(path).is_absolute() else Path(base_dir) / path
    try:
        with p.open(newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise ValueError(f"cannot read the call graph file {p}: {e}; expected a CSV adjacency matrix "
                         "(row calls column) or a list of {caller, callee}") from None
    edges = adjacency_edges(rows, str(p))
    selfs = sorted({a for a, b in edges if a == b})
    if selfs:
        raise ValueError(f"{p}: a service calling itself ({', '.join(selfs)}) says nothing about where a fault "
                         "started: expected 0 on the diagonal")
    return edges
