"""`sources:` where Vigil reads from: Prometheus (metrics), MLflow (the model registry),
and optionally Loki (logs) and Tempo (traces). Secrets come only from the environment."""
from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from monitor.config_types import Duration, RegistryURI, Secret, SourceURL
from monitor.sources.prometheus_warnings import check_warning_regex

WarningRegex = Annotated[str, AfterValidator(check_warning_regex)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PrometheusConfig(_Model):
    url: SourceURL = "http://127.0.0.1:9090"
    timeout_s: float = Field(10.0, gt=0)
    retries: int = Field(3, ge=0, le=10)
    step: Annotated[Duration, Field(ge=0.001)] = 60.0  # resolution of range queries (Prometheus: >= 1 ms)
    bearer_token: Secret = None
    # Sent as X-Scope-OrgID: Mimir and Cortex (multitenancy on by default) answer 401 `no org id` without it.
    tenant: str | None = None
    # Thanos/Mimir warnings known to say nothing about missing data (RE2, matched against the
    # whole warning): one on every answer would otherwise hold every resolve and rollback.
    ignore_warnings: tuple[WarningRegex, ...] = ()


class MlflowConfig(_Model):
    tracking_uri: RegistryURI = "http://127.0.0.1:5000"  # or sqlite:///path/mlflow.db
    timeout_s: float = Field(10.0, gt=0)


class LokiConfig(_Model):
    url: SourceURL
    tenant: str | None = None  # sent as X-Scope-OrgID
    timeout_s: float = Field(10.0, gt=0)
    page_limit: int = Field(1000, ge=1, le=5000)
    # Lines read per query (one service, one window): a chatty service is cut there, and
    # the cycle says its logs were partly unread instead of paging without end.
    max_lines: int = Field(50_000, ge=1, le=1_000_000)
    bearer_token: Secret = None
    # The stream label that names a service: {<service_label>="<service>"} selects its lines.
    # Loki 3 and OpenTelemetry collectors label streams `service_name`.
    service_label: str = Field("service", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")


class TempoConfig(_Model):
    url: SourceURL
    # Sent as X-Scope-OrgID: a Tempo with multitenancy_enabled answers 401 `no org id` without it.
    tenant: str | None = None
    timeout_s: float = Field(10.0, gt=0)
    search_limit: int = Field(50, ge=1, le=1000)
    bearer_token: Secret = None


class SourcesConfig(_Model):
    prometheus: PrometheusConfig = PrometheusConfig()
    mlflow: MlflowConfig = MlflowConfig()
    loki: LokiConfig | None = None
    tempo: TempoConfig | None = None
