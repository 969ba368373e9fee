"""Rollback executors: each moves one serving layer from one model version to another,
idempotently, and reads it back to verify.

- `base`: the contract (`RollbackStep`, `Executor`, `Verification`, `ExecutorError`).
- `mlflow_alias`: the registry alias (every rollback's first step).
- `kserve`: a KServe InferenceService (storageUri, or canary traffic to 0).
- `argo`: an Argo Rollouts Rollout (abort, then undo to the ReplicaSet of the version).
- `webhook`: a signed, retried, idempotent HTTP call plus a verification call.
- `kube`: the Kubernetes client plumbing the two above share.
- `guarded`: how a rollback calls them (an unexpected exception is an ExecutorError; a time budget).
- `config`: `models[].serving` in vigil.yaml; `build`: executors from that config.

This package's top imports only the contract and the config models (monitor.config needs
them); `build` brings in the clients.
"""
from monitor.executors.base import Executor, ExecutorError, RollbackStep, Verification
from monitor.executors.config import (
    ArgoRolloutsExecutorConfig,
    KServeExecutorConfig,
    MlflowAliasExecutorConfig,
    ServingExecutorConfig,
    WebhookExecutorConfig,
)

__all__ = [
    "ArgoRolloutsExecutorConfig",
    "Executor",
    "ExecutorError",
    "KServeExecutorConfig",
    "MlflowAliasExecutorConfig",
    "RollbackStep",
    "ServingExecutorConfig",
    "Verification",
    "WebhookExecutorConfig",
]
