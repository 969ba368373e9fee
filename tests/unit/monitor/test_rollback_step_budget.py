"""A slow serving layer must not hold a model's cycle (or a person's request) for minutes:
a webhook executor's retries took up to max_attempts x timeout_s + waits per call, and a
rollback makes several calls."""
from __future__ import annotations

import time

import httpx

from monitor.executors.config import WebhookExecutorConfig
from monitor.executors.webhook import WebhookExecutor
from tests.helpers_vigil import MODEL, T0, model_config
from tests.unit.monitor.test_rollback_intents import deployed


def test_a_webhook_answering_503_holds_a_cycle_for_at_most_the_step_budget(tmp_path, monkeypatch):
    monkeypatch.setenv("VIGIL_TEST_HOOK_SECRET", "whsec-budget-1")
    vigil, reg = deployed(tmp_path, models=[model_config(serving={"kind": "mlflow_alias", "alias": "production"})])
    served, down = {"version": "2"}, {"on": True}

    def deployer(request: httpx.Request) -> httpx.Response:
        if down["on"]:
            return httpx.Response(503, text="deploying, try later")
        if request.method == "POST":
            served["version"] = "1"
        return httpx.Response(200, json=served)

    cfg = WebhookExecutorConfig(kind="webhook", url="http://127.0.0.1:9/rollback", verify_url="http://127.0.0.1:9/s",
                                secret_env="VIGIL_TEST_HOOK_SECRET", timeout_s=1, max_attempts=20, backoff_s=0.2,
                                max_wait_s=0.2)
    m = vigil.config.model(MODEL)
    vigil._layers[MODEL] = [vigil.layers(m)[0], WebhookExecutor(cfg, transport=httpx.MockTransport(deployer))]
    monkeypatch.setattr(vigil.operator.runner, "step_budget_s", 1.0, raising=False)
    started = time.monotonic()
    vigil.run_cycle(MODEL, T0)  # critical, blamed on v2: the alias moves; the deployer keeps answering 503
    took = time.monotonic() - started
    [action] = vigil.store.actions(model=MODEL)
    assert action.status == "pending", action.detail
    assert took < 3.0, f"the cycle was held {took:.1f} s by one rollback step (budget 1 s)"
    assert reg.aliases[(MODEL, "champion")] == "1"  # recorded as done for the alias, resumed for the rest

    down["on"] = False
    vigil.operator.runner.reconcile(m, T0 + 60)
    [action] = vigil.store.actions(model=MODEL)
    assert action.status == "done" and served["version"] == "1", action.detail
    assert reg.moves == [(MODEL, "champion", "1")]


