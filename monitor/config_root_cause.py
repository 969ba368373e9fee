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

These series go through the same detector and ranking the RCA benchmarks measure
(detectors/service_metrics.py, correlators/services.py), judged against the normal
period before the window (`schedule.baseline`, frozen at onset while an incident is open).
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

LABEL_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
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


class RootCauseConfig(_Model):
    service_label: str = Field("service", pattern=LABEL_NAME)
    metrics: list[ServiceMetricConfig] = Field(default_factory=list)

    @field_validator("metrics")
    @classmethod
    def _unique_names(cls, v: list[ServiceMetricConfig]) -> list[ServiceMetricConfig]:
        names = [m.name for m in v]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"expected unique metric names (they key the baselines), repeated: {', '.join(dupes)}")
        return v
