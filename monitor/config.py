"""vigil.yaml: one file, validated with pydantic, secrets only from the environment.

`load_config(path)` returns a `VigilConfig` or raises `ConfigError` listing every
problem with its line, field path and what was expected, so `vigil check-config` can
print them all at once instead of one per run. This module holds the fields (with
groups of them in config_sources, config_canary, config_receivers, ...); how a file
becomes them is in config_yaml (lines), config_env (`${VAR}`), config_loading (policy
merge, validation), config_errors (messages) and config_types (durations, secrets, URLs).
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from detectors.records import Direction
from monitor.audit.config import AuditConfig
from monitor.config_alerting import GroupingConfig, InhibitRuleConfig, MentionsConfig, TimeIntervalSetConfig
from monitor.config_auth import ApiTokenConfig, SlackActorsConfig, check_token_names
from monitor.config_canary import CanaryConfig, CanaryMetricConfig, check_canary_names
from monitor.config_cross import cross_problems, said
from monitor.config_errors import ConfigError
from monitor.config_loading import ConfigSource, validate_config
from monitor.config_messages import MessagesConfig, check_runbook_keys
from monitor.config_performance import PerformanceConfig
from monitor.config_receivers import ReceiverConfig
from monitor.config_retention import RetentionConfig
from monitor.config_rollback import RollbackPolicy
from monitor.config_root_cause import RootCauseConfig
from monitor.config_sources import LokiConfig, MlflowConfig, PrometheusConfig, SourcesConfig, TempoConfig
from monitor.config_spool import SpoolConfig
from monitor.config_types import (
    Duration,
    HttpURL,
    LabelMatchers,
    ListenHost,
    PositiveDuration,
    Secret,
    StoreURL,
    parse_duration,
    sqlite_paths_beside,
)
from monitor.config_yaml import read_yaml
from monitor.executors.config import ServingExecutorConfig

# Callers import these from here, wherever they are defined.
__all__ = ["CanaryConfig", "CanaryMetricConfig", "ConfigError", "Duration", "LokiConfig", "MlflowConfig",
           "PrometheusConfig", "RollbackPolicy", "Secret", "SourcesConfig", "TempoConfig", "VigilConfig",
           "load_config", "parse_config", "parse_duration"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- outputs
class SlackConfig(_Model):
    bot_token: Secret = None  # without a token, messages go to the JSON-lines sink and the console
    base_url: HttpURL = "https://slack.com/api/"
    signing_secret: Secret = None
    sink_path: str = "vigil-notifications.jsonl"
    max_rate_limit_retries: int = Field(3, ge=0, le=10)
    timeout_s: float = Field(10.0, gt=0)
    actors: SlackActorsConfig | None = None  # who may press buttons, for models without slack_actors
    default_channel: str = Field("#vigil-alerts", min_length=1)  # models with neither owner_ nor oncall_channel


class GrafanaConfig(_Model):
    url: HttpURL | None = None
    token: Secret = None
    folder_uid: str = "vigil"
    folder_title: str = "Vigil"
    public_url: HttpURL | None = None  # used for links in Slack; defaults to url
    # The organization the dashboards live in (the token's service account belongs to it; the
    # provisioning files name it, 1 when unset): set, Slack links carry it, as Grafana finds a uid
    # only in the viewer's current org; unset, links name none (the viewer's own, as before 1.x set it).
    org_id: int | None = Field(None, ge=1)
    provision_on_start: bool = False
    prometheus_datasource_uid: str = "prom"  # data-source uids: Grafana still takes legacy ones
    loki_datasource_uid: str = "loki"
    tempo_datasource_uid: str = "tempo"

    @field_validator("folder_uid")
    @classmethod
    def _grafana_uid(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,40}", v):
            raise ValueError("expected a Grafana uid: 1 to 40 of A-Z a-z 0-9 _ -")
        return v


class RateLimitConfig(_Model):
    per_second: float = Field(5.0, gt=0, le=1e6)
    burst: int = Field(20, ge=1, le=1_000_000)


class ApiConfig(_Model):
    host: ListenHost = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    token: Secret = None  # one admin token named "admin" (older configs); named ones go in `tokens`
    tokens: list[ApiTokenConfig] = Field(default_factory=list)  # named, with roles (monitor/config_auth.py)
    tokens_file: str | None = None  # more: one `name role sha256 [models]` a line, or YAML `tokens: [...]`
    public_url: HttpURL | None = None  # used for links (drift reports) in Slack
    # Bodies over these get 413 before they are read (monitor/api/limits.py); samples
    # batches (up to 100,000 records) get their own, larger limit.
    max_body_bytes: int = Field(1_048_576, ge=1024)
    max_samples_body_bytes: int = Field(16_777_216, ge=1024)
    # Writes (POST) per client (bearer token, else address); null turns it off.
    rate_limit: RateLimitConfig | None = RateLimitConfig()
    # One log line per request (method, path, status, duration, client) on logger vigil.access.
    access_log: bool = False

    @model_validator(mode="after")
    def _unique_token_names(self) -> ApiConfig:
        check_token_names(self.tokens, legacy=self.token is not None)
        return self


class StoreConfig(_Model):
    url: StoreURL = "sqlite:///vigil.db"  # postgresql+psycopg://user@host/db for several replicas


SWEEP_AUTO_MODELS = 50  # one job per model keeps up to about 100 (issue 17); sweep well before


class ScheduleConfig(_Model):
    interval: PositiveDuration = 60.0
    lookback: PositiveDuration = 1800.0  # window [t - lookback, t] pulled each cycle
    baseline: Duration = 3600.0  # window before the lookback used as a baseline
    # APScheduler's misfire grace is a whole number of seconds, at least 1 (int() of it is passed).
    misfire_grace: Annotated[Duration, Field(ge=1)] = 30.0
    # true: one job per interval runs every owned model's cycle after one batched read of
    # Prometheus and the registry (monitor/cycle/prefetch.py), on a pool of `sweep_workers`
    # threads; a fleet of hundreds of models needs it. false: one job per model, spread over
    # the interval. auto: a sweep from SWEEP_AUTO_MODELS models on (decided at start).
    sweep: bool | Literal["auto"] = "auto"
    sweep_workers: int = Field(0, ge=0)  # 0: the CPU count
    # A sweep's cycles in this many worker processes (monitor/sweep_pool.py): most of a
    # cycle holds the GIL, so threads alone use about one core. 0: on the daemon's threads.
    # auto: one per core on a machine with several, from 200 models on.
    sweep_processes: Annotated[int, Field(ge=0, le=64)] | Literal["auto"] = "auto"
    # SIGTERM/SIGINT: running cycles finish and the outbox drains within this; past it the
    # process exits non-zero naming what it abandoned.
    shutdown_grace: Duration = 30.0
    # /readyz is 503 after this many failed cycles in a row of any model ...
    unready_after_failed_cycles: int = Field(3, ge=1)
    # ... or when a model's last successful cycle is older than this many intervals.
    unready_after_intervals: float = Field(3.0, ge=1)

    def sweeps(self, models: int) -> bool:
        """Whether a fleet of `models` runs as one sweep per interval."""
        return models >= SWEEP_AUTO_MODELS if self.sweep == "auto" else bool(self.sweep)


# --------------------------------------------------------------------------- policy
class PolicyConfig(_Model):
    drift_statistic: Literal["psi", "wasserstein", "ks", "js"] = "psi"
    drift_warning: float = Field(0.1, gt=0)
    drift_critical: float = Field(0.2, gt=0)
    kpi_drop_critical_pct: float = Field(5.0, gt=0)
    slo_consecutive_cycles: int = Field(3, ge=1)
    cold_start: Duration = 7 * 86400.0
    deploy_suspect_window: Duration = Field(2 * 3600.0, gt=0)
    min_samples: int = Field(100, ge=1)  # below this a drift verdict is "not enough data"
    # After cold start: keep comparing with the training reference, or with a rolling window
    # of production samples (the `rolling_reference` before the current window, rebuilt daily,
    # never reaching back past the last deploy).
    reference_after_cold_start: Literal["training", "rolling"] = "training"
    rolling_reference: Duration = 7 * 86400.0
    drift_match_time_of_day: bool = True  # a window under a day vs the reference rows of its hours (README)
    resolve_after_cycles: int = Field(2, ge=1)  # quiet cycles before an incident resolves
    # Online anomaly detection of each KPI/SLO series (detectors/anomaly.py): a score >= this is anomalous; 1: off.
    anomaly_threshold: float = Field(0.9, gt=0, le=1)
    anomaly_resolution: Duration = 300.0  # > 0: score bin means, not each point (README: false alarms)
    repeat_interval: PositiveDuration = 4 * 3600.0  # re-notify an unchanged open incident (0 would: every cycle)
    rollback: RollbackPolicy = RollbackPolicy()

    @model_validator(mode="after")
    def _critical_above_warning(self) -> PolicyConfig:
        if self.drift_critical < self.drift_warning:
            raise ValueError(
                f"drift_critical ({self.drift_critical}) must be >= drift_warning ({self.drift_warning})"
            )
        return self


# --------------------------------------------------------------------------- models
class SamplesConfig(_Model):
    path: str  # directory or glob of parquet/CSV files, relative to the config file
    timestamp_column: str = "timestamp"


class ReferenceConfig(_Model):
    path: str | None = None  # training reference; None -> tag `vigil.reference_path` on the version
    tag: str = "vigil.reference_path"
    timestamp_column: str | None = Field(None, min_length=1)  # the training rows' times: time-of-day slices


class FeatureConfig(_Model):
    name: str
    type: Literal["numeric", "categorical"] = "numeric"


def _feature_list(value: Any) -> Any:
    if isinstance(value, list):
        return [{"name": v} if isinstance(v, str) else v for v in value]
    return value


class KpiConfig(_Model):
    name: str
    query: str  # PromQL returning one series
    bad_direction: Literal["down", "up"] = "down"
    drop_pct: float | None = Field(None, gt=0)  # overrides policy.kpi_drop_critical_pct
    volume_query: str | None = Field(None, min_length=1)  # PromQL: the requests behind each value

    @property
    def direction(self) -> Direction:
        return Direction(self.bad_direction)


class SloConfig(_Model):
    name: str
    query: str  # PromQL returning one series, e.g. p99 latency in seconds or an error ratio
    threshold: float
    comparison: Literal["above", "below"] = "above"  # breach when value is above/below threshold
    unit: str = ""
    volume_query: str | None = Field(None, min_length=1)  # PromQL: the requests behind each value


class GpuConfig(_Model):
    selector: LabelMatchers = ""  # PromQL label matchers, braces optional, e.g. pod=~"recsys-.*"
    util_pct: float = Field(95.0, gt=0, le=100)
    fb_used_ratio: float = Field(0.95, gt=0, le=1)
    kv_cache_ratio: float = Field(0.95, gt=0, le=1)
    queue_waiting: float = Field(10.0, ge=0)
    min_duration: Duration = 300.0  # saturation must last this long to count
    dead_node_hold: Duration = 6 * 3600.0  # a GPU gone mid-saturation stays no_data this long (or until it reports)


class ModelConfig(_Model):
    name: str = Field(min_length=1, max_length=100)
    registry_name: str | None = None  # defaults to name
    alias: str = "champion"
    services: list[str] = Field(default_factory=list)
    owner_channel: str | None = None  # Slack channel of the model owner
    oncall_channel: str | None = None  # critical incidents also go here
    samples: SamplesConfig | None = None
    reference: ReferenceConfig = ReferenceConfig()
    features: Annotated[list[FeatureConfig], BeforeValidator(_feature_list)] = Field(default_factory=list)
    prediction_column: str | None = None
    kpis: list[KpiConfig] = Field(default_factory=list)
    slos: list[SloConfig] = Field(default_factory=list)
    gpu: GpuConfig | None = None
    # Per-service metric series for the root-cause ranking (None: the global `root_cause`).
    root_cause: RootCauseConfig | None = None
    # The keys written here override the global policy's, key by key (load_config merges the
    # two), so this is the model's whole policy in force.
    policy: PolicyConfig | None = None
    serving: ServingExecutorConfig | None = None  # serving layer a rollback changes after the alias (None: alias only)
    slack_actors: SlackActorsConfig | None = None  # who may press this model's buttons (default: slack.actors)
    labels: dict[str, str] = Field(default_factory=dict)  # extra alert labels for silences and inhibit rules
    mute_time_intervals: list[str] = Field(default_factory=list)  # names in time_intervals: maintenance windows
    mentions: MentionsConfig | None = None  # who threaded state changes @-mention (default: mentions)

    @field_validator("features")
    @classmethod
    def _one_type_each(cls, v: list[FeatureConfig]) -> list[FeatureConfig]:
        types: dict[str, str] = {}  # under two types, drift took the first; the drift page, ingest another
        for f in v:
            if types.setdefault(f.name, f.type) != f.type:
                raise ValueError(f"feature {f.name!r} is listed as {types[f.name]} and as {f.type}: list it once")
        return v

    @field_validator("labels")
    @classmethod
    def _label_names(cls, v: dict[str, str]) -> dict[str, str]:
        reserved = {"alertname", "model", "severity", "kind", "kinds", "entity", "cause_kind", "cause", "source"}
        for k in v:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", k):
                raise ValueError(f"expected label names ([A-Za-z_][A-Za-z0-9_]*), got {k!r}")
            if k in reserved:
                raise ValueError(f"label {k!r} is set by Vigil; choose another name")
        return v
    runbooks: dict[str, HttpURL] = Field(default_factory=dict)  # per finding kind or `default` (config_messages)

    @field_validator("runbooks")
    @classmethod
    def _runbook_keys(cls, v: dict[str, str]) -> dict[str, str]:
        return check_runbook_keys(v)
    canary: CanaryConfig | None = None  # a challenger judged against the champion each cycle (None: no canary)
    performance: PerformanceConfig | None = None  # realised (delayed labels) and estimated performance

    @model_validator(mode="after")
    def _performance_prediction(self) -> ModelConfig:
        if self.performance is not None and not (self.performance.prediction_column or self.prediction_column):
            raise ValueError("performance needs the prediction: set performance.prediction_column or "
                             "prediction_column")
        return self

    @property
    def registry(self) -> str:
        return self.registry_name or self.name

    @model_validator(mode="after")
    def _canary_names(self) -> ModelConfig:
        if self.canary is not None:
            check_canary_names(self.canary, {k.name for k in self.kpis}, {s.name for s in self.slos}, self.alias)
        return self

    @field_validator("name")
    @classmethod
    def _safe_name(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.\-]*", v):
            raise ValueError("expected letters, digits, '.', '_' or '-' (used in URLs and uids)")
        return v


class VigilConfig(_Model):
    sources: SourcesConfig = SourcesConfig()
    slack: SlackConfig = SlackConfig()
    grafana: GrafanaConfig = GrafanaConfig()
    api: ApiConfig = ApiConfig()
    store: StoreConfig = StoreConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    policy: PolicyConfig = PolicyConfig()
    audit: AuditConfig = AuditConfig()
    time_intervals: list[TimeIntervalSetConfig] = Field(default_factory=list)  # named maintenance windows
    inhibit_rules: list[InhibitRuleConfig] | None = None  # None: the defaults (alerts/inhibition.py); []: none
    grouping: GroupingConfig = GroupingConfig()
    mentions: MentionsConfig = MentionsConfig()
    receivers: list[ReceiverConfig] = Field(default_factory=list)  # PagerDuty, Opsgenie, webhook, Alertmanager
    messages: MessagesConfig = MessagesConfig()
    retention: RetentionConfig = RetentionConfig()
    spool: SpoolConfig = SpoolConfig()
    root_cause: RootCauseConfig = RootCauseConfig()  # for models without a root_cause of their own
    models: list[ModelConfig] = Field(min_length=1)
    base_dir: str = "."  # set by load_config: relative paths resolve against the file's folder
    _by_name: list[Any] = PrivateAttr(default_factory=lambda: [None, {}])  # [models it indexes, name -> model]

    @model_validator(mode="before")
    @classmethod
    def _sqlite_beside_file(cls, data: Any) -> Any:
        return sqlite_paths_beside(data, StoreConfig.model_fields["url"].default)

    @model_validator(mode="after")
    def _cross_checks(self, info: ValidationInfo) -> VigilConfig:
        """Across sections (monitor/config_cross.py): load_config collects them all (its
        context's `cross_problems`); a model built in code raises the first."""
        problems = cross_problems(self, (info.context or {}).get("broken", ()))
        found = (info.context or {}).get("cross_problems")
        if found is not None:
            found.extend(problems)
        elif problems:
            raise ValueError(said(problems[0]))
        return self

    def model(self, name: str) -> ModelConfig:
        """KeyError for an unknown name. O(1): every cycle of a thousand models asks."""
        models, index = self._by_name
        if models is not self.models:  # first call, or a copy of this config with other models
            index = {m.name: m for m in self.models}
            self._by_name[:] = [self.models, index]
        return index[name]

    def policy_for(self, model: ModelConfig) -> PolicyConfig:
        return model.policy or self.policy

    def root_cause_for(self, model: ModelConfig) -> RootCauseConfig:
        """The model's own `root_cause`, else the global one (a whole section, not merged)."""
        return model.root_cause or self.root_cause

    def resolve_path(self, path: str) -> Path:
        p = Path(path)
        return p if p.is_absolute() else Path(self.base_dir) / p


def parse_config(data: Any, source: str = "config", base_dir: str = ".") -> VigilConfig:
    """`data` as parsed from YAML, validated: see monitor/config_loading.py for the steps."""
    return validate_config(VigilConfig, data, ConfigSource(source, base_dir))


def load_config(path: str | os.PathLike[str]) -> VigilConfig:
    p = Path(path)
    doc = read_yaml(p)
    # Symlinks not followed: a Kubernetes volume's files link into a folder its next update deletes.
    base = os.path.dirname(os.path.abspath(p))
    return validate_config(VigilConfig, doc.data, ConfigSource(str(p), base, doc.lines, doc.problems))
