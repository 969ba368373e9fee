"""A rollback driven by two callers at once (a person's request through the API, which holds
no lease, and the model's cycle reconciling it): the request paused between the alias and the
serving layer, the cycle finished the rollback, and a person rolled v2 out again. The request,
resumed, moved the serving layer back to v1. The intent is read again before each layer: one
finished meanwhile is its outcome, and nothing more moves."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from monitor import failpoints
from monitor.cycle.rollback_intents import RollbackAsk
from monitor.executors.build import alias_executor
from monitor.store.intents import open_intents
from tests.fakes.serving_layer import ServingLayer
from tests.helpers_vigil import MODEL, T0, make_config, make_vigil, serving_registry

PAUSE_S = 3.0


def test_a_request_paused_between_two_layers_stops_once_another_caller_finished_its_rollback(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reg, serving = serving_registry(version="2"), ServingLayer("2")
    vigil = make_vigil(make_config(tmp_path), registry=reg)
    vigil._layers[MODEL] = [alias_executor(reg, "champion"), serving]
    m = vigil.config.model(MODEL)
    failpoints.reset()
    monkeypatch.setenv(failpoints.ENV, f"before_layer_move=sleep:{PAUSE_S}@2")  # the request, before serving
    outcome: list[str] = []
    request = threading.Thread(target=lambda: outcome.append(str(vigil.operator.rollback(
        RollbackAsk(m, "1", "bad release", "api:alice", None, T0)).status)), daemon=True)
    request.start()

    def alias_recorded() -> bool:
        with vigil.store.tx() as s:
            return any("mlflow_alias" in i.steps_done for i in open_intents(s, MODEL))

    deadline = time.monotonic() + 20
    while not alias_recorded():
        assert time.monotonic() < deadline and request.is_alive(), "the request never moved the alias"
        time.sleep(0.02)
    [done] = vigil.rollbacks.reconcile(m, T0 + 1)  # the model's cycle, meanwhile
    assert str(done.status) == "done" and serving.moves == ["1"]
    serving.version = reg.aliases[(MODEL, "champion")] = "2"  # a person rolls v2 out again, fixed
    request.join(PAUSE_S + 20)
    assert serving.version == "2", f"the resumed request moved the serving layer back: {serving.moves}"
    assert outcome == ["done"]
