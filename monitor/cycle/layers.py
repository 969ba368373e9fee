"""PROVISIONAL: the executor contract the rollback intents drive, until monitor/executors lands."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class RollbackStep:
    model: str
    registry_name: str
    from_version: str | None
    to_version: str
    key: str


@dataclass(frozen=True)
class Verification:
    ok: bool
    serving: str | None
    detail: str = ""


class ExecutorError(RuntimeError):
    def __init__(self, detail: str, *, retryable: bool) -> None:
        super().__init__(detail)
        self.detail, self.retryable = detail, retryable


class Executor(Protocol):
    name: str

    def current(self, step: RollbackStep) -> str | None: ...

    def apply(self, step: RollbackStep) -> None: ...

    def verify(self, step: RollbackStep) -> Verification: ...


class AliasExecutor:
    name = "mlflow_alias"

    def __init__(self, registry: Any, alias: str) -> None:
        self.registry, self.alias = registry, alias

    def current(self, step: RollbackStep) -> str | None:
        try:
            v = self.registry.alias_version(step.registry_name, self.alias)
        except Exception as e:
            raise ExecutorError(f"cannot read alias '{self.alias}': {e}", retryable=True) from e
        return None if v is None else str(v)

    def apply(self, step: RollbackStep) -> None:
        try:
            self.registry.set_alias(step.registry_name, self.alias, step.to_version)
        except Exception as e:
            raise ExecutorError(f"moving '{self.alias}' failed: {e}", retryable=True) from e

    def verify(self, step: RollbackStep) -> Verification:
        now = self.current(step)
        return Verification(now == step.to_version, now, f"'{self.alias}' -> v{now}")
