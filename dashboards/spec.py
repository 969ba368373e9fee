"""What the dashboards are generated from, as plain values.

The builders read these and nothing else, so they can be built and tested without a
config file, and the config can change shape without touching a panel. The mapping
from Vigil's config lives in `monitor/grafana/specs.py`; it resolves defaults and
per-model overrides there, which is why no field below has a default that the
config also has (two defaults would drift apart).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class DataSourceUids:
    """The uids dashboards point at; the provisioning files create the data sources with these uids."""

    prometheus: str
    loki: str
    tempo: str


@dataclass(frozen=True)
class PrometheusSpec:
    url: str
    # The scrape interval: Grafana's $__rate_interval must span >= 4 samples of it.
    scrape_interval_s: float
    tenant: str | None = None  # sent as X-Scope-OrgID by the data source (Mimir, Cortex)


@dataclass(frozen=True)
class LokiSpec:
    url: str
    max_lines: int
    tenant: str | None = None  # sent as X-Scope-OrgID by the data source
    service_label: str = "service"  # the stream label naming a service (`service_name` on Loki 3 / OTel)


@dataclass(frozen=True)
class TempoSpec:
    url: str
    tenant: str | None = None  # sent as X-Scope-OrgID by the data source


@dataclass(frozen=True)
class DataSourcesSpec:
    """The data sources Grafana gets; Loki and Tempo are optional, and their panels
    and cross-links appear only when they are given."""

    uids: DataSourceUids
    prometheus: PrometheusSpec
    loki: LokiSpec | None = None
    tempo: TempoSpec | None = None


@dataclass(frozen=True)
class KpiSpec:
    name: str
    query: str  # PromQL returning one series
    bad_direction: Literal["down", "up"]
    drop_pct: float  # the critical move from the baseline, per cent (the model's own or the policy's)


@dataclass(frozen=True)
class SloSpec:
    name: str
    query: str
    threshold: float
    comparison: Literal["above", "below"]  # breach when the value is above/below the threshold
    unit: str


@dataclass(frozen=True)
class GpuSpec:
    selector: str  # PromQL label matchers without braces
    util_pct: float
    fb_used_ratio: float
    kv_cache_ratio: float
    queue_waiting: float
    min_duration_s: float


@dataclass(frozen=True)
class PolicySpec:
    """The alert thresholds a model's panels draw, so a dashboard shows the line Vigil alerts on."""

    drift_statistic: str
    drift_warning: float
    drift_critical: float
    slo_consecutive_cycles: int
    # Every statistic the policy judges features on: the configured one, plus the one
    # categorical features fall back to when it has no categorical form (ks, wasserstein).
    drift_statistics: tuple[str, ...] = ()


@dataclass(frozen=True)
class CanarySpec:
    """A challenger judged against the champion (monitor/cycle/canary.py)."""

    alias: str
    fail_effect: float  # relative worsening that fails a metric (0.1 = 10 %)


@dataclass(frozen=True)
class PerformanceSpec:
    """A model's performance panels: which metrics, and the drop Vigil alerts on."""

    task: str  # classification | regression
    metrics: tuple[str, ...]
    drop_pct: float


@dataclass(frozen=True)
class RootCauseMetricSpec:
    """One per-service metric series the root-cause ranking reads (`root_cause.metrics`)."""

    name: str
    query: str  # PromQL returning one series per service
    service_label: str  # the label naming the service in its result
    meaning: str  # availability | latency | errors | saturation | unknown (resolved from the name if not given)
    bad_direction: Literal["down", "up", "both"]


@dataclass(frozen=True)
class ModelSpec:
    name: str
    registry: str
    alias: str
    policy: PolicySpec
    services: tuple[str, ...] = ()
    kpis: tuple[KpiSpec, ...] = ()
    slos: tuple[SloSpec, ...] = ()
    gpu: GpuSpec | None = None
    canary: CanarySpec | None = None
    drift: bool = True  # the model has features or a prediction column to drift (else no drift panel)
    performance: PerformanceSpec | None = None  # realised and estimated performance panels
    root_cause: tuple[RootCauseMetricSpec, ...] = ()  # the per-service series the root-cause ranking reads


@dataclass(frozen=True)
class FolderSpec:
    uid: str
    title: str
    org_id: int | None = None  # the Grafana organization links name (grafana.org_id); files say 1 when unset


@dataclass(frozen=True)
class DashboardSpec:
    """Everything `vigil dashboards` provisions: data sources, the folder, one dashboard per model."""

    datasources: DataSourcesSpec
    folder: FolderSpec
    models: tuple[ModelSpec, ...]
