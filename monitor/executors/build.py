"""Executors from configuration: the alias executor every model has, and the serving-layer
executor `models[].serving` names (None: the alias is all there is to move)."""
from __future__ import annotations

from pathlib import Path

from monitor.config import ModelConfig
from monitor.executors.base import Executor
from monitor.executors.config import MlflowAliasExecutorConfig, WebhookExecutorConfig
from monitor.executors.mlflow_alias import (
    AliasRegistry,
    ChallengerAliasExecutor,
    ChallengerRegistry,
    MlflowAliasExecutor,
)


def alias_executor(registry: AliasRegistry, alias: str) -> Executor:
    """The MLflow alias executor: moving `alias` is the first step of every rollback."""
    return MlflowAliasExecutor(registry, alias)


def challenger_executor(registry: ChallengerRegistry, alias: str, champion_alias: str) -> Executor:
    """A canary's alias: removing it is the first step of every canary pull."""
    return ChallengerAliasExecutor(registry, alias, champion_alias)


def layer_names(model_cfg: ModelConfig) -> set[str]:
    """The names of the layers a rollback or canary pull of the model moves (as the executors
    built from this config call themselves), without building them: a reload tells from
    these which `rollback:<layer>` health states no model uses any more."""
    names = {MlflowAliasExecutor.DEFAULT_NAME}
    cfg = model_cfg.serving
    if isinstance(cfg, MlflowAliasExecutorConfig):
        alias = cfg.alias or model_cfg.alias
        if alias != model_cfg.alias:
            names.add(f"{MlflowAliasExecutor.DEFAULT_NAME}:{alias}")
    elif cfg is not None:
        names.add(cfg.kind)  # webhook, kserve, argo_rollouts: each executor's name is its kind
    if model_cfg.canary is not None:
        names.add(ChallengerAliasExecutor.name)
    return names


def build_serving_executor(model_cfg: ModelConfig, registry: AliasRegistry, *,
                           base_dir: str | Path = ".") -> Executor | None:
    """The serving layer to change after the alias moves; relative paths (kubeconfig,
    secret_file) resolve against `base_dir`, the config file's folder. Raises ExecutorError
    (reason "config") when a Kubernetes client cannot be configured."""
    cfg = model_cfg.serving
    if cfg is None:
        return None
    if isinstance(cfg, MlflowAliasExecutorConfig):
        alias = cfg.alias or model_cfg.alias
        if alias == model_cfg.alias:
            return None
        return MlflowAliasExecutor(registry, alias, name=f"mlflow_alias:{alias}")
    if isinstance(cfg, WebhookExecutorConfig):
        from monitor.executors.webhook import WebhookExecutor

        return WebhookExecutor(cfg, base_dir=base_dir)
    # Imported here: the Kubernetes client costs about 0.5 s to import, paid only by
    # deployments that use it.
    from monitor.executors.kube import KubeClient, make_api_client

    kube = KubeClient(make_api_client(cfg, base_dir), timeout_s=cfg.timeout_s, max_attempts=cfg.max_attempts)
    if cfg.kind == "kserve":
        from monitor.executors.kserve import KServeExecutor

        return KServeExecutor(kube, cfg)
    from monitor.executors.argo import ArgoRolloutsExecutor

    return ArgoRolloutsExecutor(kube, cfg)
