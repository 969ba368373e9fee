"""Vigil's config as the plain specs `dashboards/` builds from.

Defaults and per-model overrides are resolved here (the model's own policy over the
global one, a KPI's own `drop_pct` over the policy's), so a dashboard draws the same
thresholds the alert policy applies.
"""
from __future__ import annotations

from typing import Literal

from dashboards.spec import (
    CanarySpec,
    DashboardSpec,
    DataSourcesSpec,
    DataSourceUids,
    FolderSpec,
    GpuSpec,
    KpiSpec,
    LokiSpec,
    ModelSpec,
    PerformanceSpec,
    PolicySpec,
    PrometheusSpec,
    RootCauseMetricSpec,
    SloSpec,
    TempoSpec,
)
from detectors.drift.compare import CATEGORICAL_STATISTICS
from detectors.drift.decision import CATEGORICAL_FALLBACK
from detectors.metric_meaning import MetricClass, direction_of, metric_class
from detectors.performance.realised import metric_names
from detectors.records import Direction
from monitor.config import GpuConfig, GrafanaConfig, KpiConfig, ModelConfig, PolicyConfig, SloConfig, VigilConfig
from monitor.config_root_cause import RootCauseConfig


def dashboard_specs(config: VigilConfig) -> DashboardSpec:
    """Everything `vigil dashboards` and the daemon provision, in config order."""
    return DashboardSpec(
        datasources=datasources_spec(config),
        folder=FolderSpec(uid=config.grafana.folder_uid, title=config.grafana.folder_title,
                          org_id=config.grafana.org_id),
        models=tuple(model_spec(m, config.policy_for(m), config.root_cause_for(m)) for m in config.models),
    )


def datasource_uids(grafana: GrafanaConfig) -> DataSourceUids:
    return DataSourceUids(prometheus=grafana.prometheus_datasource_uid, loki=grafana.loki_datasource_uid,
                          tempo=grafana.tempo_datasource_uid)


def datasources_spec(config: VigilConfig) -> DataSourcesSpec:
    src = config.sources
    return DataSourcesSpec(
        uids=datasource_uids(config.grafana),
        prometheus=PrometheusSpec(url=src.prometheus.url, scrape_interval_s=src.prometheus.step,
                                  tenant=src.prometheus.tenant),
        loki=LokiSpec(url=src.loki.url, max_lines=src.loki.page_limit, tenant=src.loki.tenant,
                      service_label=src.loki.service_label) if src.loki else None,
        tempo=TempoSpec(url=src.tempo.url, tenant=src.tempo.tenant) if src.tempo else None,
    )


def model_spec(model: ModelConfig, policy: PolicyConfig, root_cause: RootCauseConfig | None = None) -> ModelSpec:
    """`policy` and `root_cause` are the ones in force for this model (`VigilConfig.policy_for`,
    `root_cause_for`)."""
    return ModelSpec(
        name=model.name,
        registry=model.registry,
        alias=model.alias,
        policy=policy_spec(policy, categorical=any(f.type == "categorical" for f in model.features)),
        services=tuple(model.services),
        kpis=tuple(kpi_spec(k, policy) for k in model.kpis),
        slos=tuple(slo_spec(s) for s in model.slos),
        gpu=gpu_spec(model.gpu) if model.gpu else None,
        canary=CanarySpec(model.canary.alias, model.canary.fail_effect) if model.canary else None,
        drift=bool(model.features or model.prediction_column),
        performance=PerformanceSpec(model.performance.task, metric_names(model.performance.task),
                                    model.performance.drop_pct) if model.performance else None,
        root_cause=root_cause_specs(root_cause) if root_cause else (),
    )


_BAD_WAY: dict[Direction, Literal["down", "up", "both"]] = {
    Direction.DOWN: "down", Direction.UP: "up", Direction.BOTH: "both"}


def root_cause_specs(rc: RootCauseConfig) -> tuple[RootCauseMetricSpec, ...]:
    """Each root-cause metric with the meaning the detector gives it: the configured one,
    else the one its name's words say (detectors/metric_meaning.py), and so which way is bad."""
    out = []
    for m in rc.metrics:
        cls = MetricClass(m.metric_class) if m.metric_class else metric_class(m.name)
        bad = _BAD_WAY[direction_of(cls)]
        out.append(RootCauseMetricSpec(m.name, m.query, rc.service_label, str(cls), bad))
    return tuple(out)


def policy_spec(policy: PolicyConfig, categorical: bool = False) -> PolicySpec:
    """`categorical`: the model has categorical features, judged on the fallback statistic
    when the configured one has no categorical form (detectors/drift/decision.py)."""
    stats: list[str] = [policy.drift_statistic]
    if categorical and policy.drift_statistic not in CATEGORICAL_STATISTICS:
        stats.append(CATEGORICAL_FALLBACK)
    return PolicySpec(drift_statistic=policy.drift_statistic, drift_warning=policy.drift_warning,
                      drift_critical=policy.drift_critical, slo_consecutive_cycles=policy.slo_consecutive_cycles,
                      drift_statistics=tuple(stats))


def kpi_spec(kpi: KpiConfig, policy: PolicyConfig) -> KpiSpec:
    return KpiSpec(name=kpi.name, query=kpi.query, bad_direction=kpi.bad_direction,
                   drop_pct=kpi.drop_pct or policy.kpi_drop_critical_pct)


def slo_spec(slo: SloConfig) -> SloSpec:
    return SloSpec(name=slo.name, query=slo.query, threshold=slo.threshold, comparison=slo.comparison,
                   unit=slo.unit)


def gpu_spec(gpu: GpuConfig) -> GpuSpec:
    return GpuSpec(selector=gpu.selector, util_pct=gpu.util_pct, fb_used_ratio=gpu.fb_used_ratio,
                   kv_cache_ratio=gpu.kv_cache_ratio, queue_waiting=gpu.queue_waiting,
                   min_duration_s=gpu.min_duration)
