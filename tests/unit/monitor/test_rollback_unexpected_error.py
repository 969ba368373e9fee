"""A serving layer that raises something other than ExecutorError (a bug in an executor,
a library raising its own exception) in the middle of a rollback."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from monitor.executors.base import RollbackStep, Verification
from monitor.vigil import Vigil
from tests.helpers_vigil import MODEL, T0, model_config
from tests.unit.monitor.test_rollback_intents import deployed


class Erratic:
    """A serving layer whose apply raises TypeError, having acted (`acts`) or not."""

    name = "webhook"

    def __init__(self, *, acts: bool) -> None:
        self.serving, self.acts, self.applies = "2", acts, 0

    def current(self, step: RollbackStep) -> str | None:
        return self.serving

    def apply(self, step: RollbackStep) -> None:
        self.applies += 1
        if self.acts:
            self.serving = step.to_version
        raise TypeError("'NoneType' object is not subscriptable")

    def verify(self, step: RollbackStep) -> Verification:
        return Verification(self.serving == step.to_version, self.serving, f"serves v{self.serving}")


def with_layer(tmp_path: Path, layer: Any) -> tuple[Vigil, Any]:
    vigil, reg = deployed(tmp_path, models=[model_config(serving={"kind": "mlflow_alias", "alias": "production"})])
    reg.aliases[(MODEL, "production")] = "2"
    m = vigil.config.model(MODEL)
    vigil._layers[MODEL] = [vigil.layers(m)[0], layer]  # the alias, then the erratic serving layer
    return vigil, reg


def test_a_layer_raising_an_unexpected_error_is_retried_then_fails_audited(tmp_path):
    """It left the intent pending for ever, the exception logged every cycle, and no other
    rollback of the model possible. Now it counts as a failed attempt (the layer is read
    back before the next one), and after the attempts the rollback fails, audited and
    shown on the incident."""
    layer = Erratic(acts=False)
    vigil, reg = with_layer(tmp_path, layer)
    m = vigil.config.model(MODEL)
    report = vigil.run_cycle(MODEL, T0)  # critical, blamed on v2: the alias moves, the layer raises
    assert report.rollback is not None and report.rollback["status"] == "pending", report.rollback
    [action] = vigil.store.actions(model=MODEL)
    assert action.status == "pending" and "TypeError" in action.detail, action.detail
    for i in range(1, 12):
        vigil.operator.runner.reconcile(m, T0 + 60 * i)
    [action] = vigil.store.actions(model=MODEL)
    assert action.status == "failed" and "gave up after 10 attempts" in action.detail, action.detail
    assert "TypeError" in action.detail and layer.applies == 10
    audit = [e.action for e in vigil.store.audit_entries()]
    assert audit.count("rollback.failed") == 1
    assert not vigil.operator.runner.in_flight(MODEL), "another rollback of the model can be asked"
    assert vigil.readiness()["rollback:webhook"].status == "down"


def test_a_layer_that_acted_before_raising_is_verified_not_moved_again(tmp_path):
    """The action may have happened: the next attempt reads the layer, finds the target and
    verifies it, rather than assuming nothing moved."""
    layer = Erratic(acts=True)
    vigil, reg = with_layer(tmp_path, layer)
    vigil.run_cycle(MODEL, T0)
    vigil.operator.runner.reconcile(vigil.config.model(MODEL), T0 + 60)
    [action] = vigil.store.actions(model=MODEL)
    assert action.status == "done", action.detail
    assert layer.applies == 1 and reg.moves == [(MODEL, "champion", "1")]

