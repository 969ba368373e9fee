"""An in-memory serving layer for rollback tests: one "cluster" any number of replicas see."""
from __future__ import annotations

from monitor.executors.base import RollbackStep, Verification


class ServingLayer:
    """Serves `version`; records each move a rollback makes of it."""

    name = "serving"

    def __init__(self, version: str) -> None:
        self.version = version
        self.moves: list[str] = []

    def current(self, step: RollbackStep) -> str | None:
        return self.version

    def apply(self, step: RollbackStep) -> None:
        self.moves.append(step.to_version)
        self.version = step.to_version

    def verify(self, step: RollbackStep) -> Verification:
        return Verification(self.version == step.to_version, self.version, f"serves v{self.version}")
