"""`models[].serving` in vigil.yaml: which serving layer a rollback changes after the alias.

A discriminated union on `kind`:

    serving: {kind: kserve, namespace: ml, name: recommender,
              storage_uri_template: "s3://models/{registry}/{version}"}
    serving: {kind: argo_rollouts, namespace: ml, name: recommender, version_label: model-version}
    serving: {kind: webhook, url: https://deployer/rollback, verify_url: https://deployer/serving,
              secret_env: VIGIL_WEBHOOK_SECRET}
    serving: {kind: mlflow_alias, alias: production}   # a second alias to move

Kubernetes targets are reached through `api_url` (a plain base URL: `kubectl proxy`, tests),
`in_cluster: true` (the pod's service account), or a kubeconfig (`kubeconfig`, else the
default ~/.kube/config, with an optional `context`).
"""
from __future__ import annotations

import re
import string
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from monitor.config_types import HttpURL

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_URI_FIELDS = {"registry", "model", "version"}


class _Model(BaseModel):
    # The same rules as monitor.config._Model; not imported from there because
    # monitor.config imports this module (importing back would be a cycle).
    model_config = ConfigDict(extra="forbid", frozen=True)


class MlflowAliasExecutorConfig(_Model):
    kind: Literal["mlflow_alias"] = "mlflow_alias"
    alias: str | None = None  # None: the model's own alias (moved anyway, so nothing more to do)


class KubeTargetConfig(_Model):
    """Where a Kubernetes object lives and how to reach the API server."""

    namespace: str = Field(min_length=1)
    name: str = Field(min_length=1)
    api_url: HttpURL | None = None
    kubeconfig: str | None = None  # relative paths resolve against the config file's folder
    context: str | None = None
    in_cluster: bool = False
    timeout_s: float = Field(10.0, gt=0)  # per request
    max_attempts: int = Field(3, ge=1, le=10)  # per request, on 429, 5xx and connection errors

    @model_validator(mode="after")
    def _one_way_in(self) -> KubeTargetConfig:
        ways = [w for w, on in (("api_url", self.api_url), ("in_cluster", self.in_cluster),
                                ("kubeconfig", self.kubeconfig)) if on]
        if len(ways) > 1:
            raise ValueError(f"choose one way to reach the Kubernetes API, got {' and '.join(ways)}")
        if self.context and (self.api_url or self.in_cluster):
            raise ValueError("context only applies to a kubeconfig")
        return self


class KServeExecutorConfig(KubeTargetConfig):
    kind: Literal["kserve"]
    # Where a version's model lives, e.g. "models:/{registry}/{version}" or
    # "s3://bucket/{registry}/{version}"; {model} is Vigil's name for the model.
    storage_uri_template: str
    # storage_uri: point spec.predictor.model.storageUri at the version (and end any canary);
    # canary: set canaryTrafficPercent to 0 (KServe's canary rollback; needs a canary in
    # progress); auto: canary when one is in progress, else storage_uri.
    mode: Literal["auto", "storage_uri", "canary"] = "auto"

    @field_validator("storage_uri_template")
    @classmethod
    def _template_fields(cls, v: str) -> str:
        try:
            names = {f for _, f, _, _ in string.Formatter().parse(v) if f is not None}
        except ValueError as e:
            raise ValueError(f"not a valid template: {e}") from None
        unknown = names - _URI_FIELDS
        if unknown:
            raise ValueError(f"unknown placeholder(s) {sorted(unknown)}: use {{registry}}, {{model}}, {{version}}")
        if "version" not in names:
            raise ValueError("the template must contain {version}")
        return v


class ArgoRolloutsExecutorConfig(KubeTargetConfig):
    kind: Literal["argo_rollouts"]
    # The pod template label (or, failing that, annotation) that holds the model version.
    version_label: str = Field("model-version", min_length=1)
    # Once Argo has observed the undo of a fully promoted version, set status.promoteFull
    # (`kubectl argo rollouts promote --full`): the rollback skips the canary steps, which
    # would otherwise hold most traffic on the bad version. False: a person promotes it.
    promote_full: bool = True


class WebhookExecutorConfig(_Model):
    kind: Literal["webhook"]
    url: str  # receives the signed POST
    verify_url: str  # GET -> {"version": "..."}: what is served now
    secret_env: str | None = None  # name of the environment variable holding the HMAC secret
    secret_file: str | None = None  # or a file holding it (e.g. a mounted Kubernetes secret)
    timeout_s: float = Field(10.0, gt=0)
    max_attempts: int = Field(5, ge=1, le=20)
    backoff_s: float = Field(0.5, ge=0)  # first wait between attempts, doubled each time
    max_wait_s: float = Field(30.0, ge=0)  # cap on one wait, Retry-After included

    @field_validator("url", "verify_url")
    @classmethod
    def _http(cls, v: str) -> str:
        v = v.strip()  # a newline from a ConfigMap or Secret: httpx refuses it, mid-rollback
        if not v.startswith(("http://", "https://")):
            raise ValueError("expected an http:// or https:// URL")
        return v

    @model_validator(mode="after")
    def _one_secret(self) -> WebhookExecutorConfig:
        if (self.secret_env is None) == (self.secret_file is None):
            raise ValueError("set exactly one of secret_env and secret_file")
        if self.secret_env is not None and not _ENV_NAME.match(self.secret_env):
            # The value is not echoed: someone may have pasted the secret itself here.
            raise ValueError("secret_env must be the name of an environment variable, such as VIGIL_WEBHOOK_SECRET")
        return self


ServingExecutorConfig = Annotated[
    MlflowAliasExecutorConfig | KServeExecutorConfig | ArgoRolloutsExecutorConfig | WebhookExecutorConfig,
    Field(discriminator="kind"),
]
