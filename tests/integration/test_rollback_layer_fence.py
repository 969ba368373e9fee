"""A replica paused between two layers of a rollback (the alias moved and recorded, the
serving layer next) past its lease, on the real PostgreSQL. Another replica took the model
over meanwhile, finished the rollback, and a person then rolled the serving layer forward
again. The paused replica, when it resumed, moved the serving layer back (it still served
the rollback's `from` version), reversing the person's change: only its first layer had been
checked against the lease. Each layer's move is now fenced: the lease and the intent are
checked again before each one, and the paused replica stops there."""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from monitor import failpoints
from monitor.cycle.rollback_intents import RollbackAsk
from monitor.executors.build import alias_executor
from monitor.replicas import LeaseLost, LeaseTiming, Membership
from monitor.vigil import Vigil
from tests.fakes.serving_layer import ServingLayer
from tests.fixtures_postgres import postgres_url  # noqa: F401  (fixture)
from tests.helpers_replicas import Ticker, fresh_schema_url, wait_until
from tests.helpers_vigil import MODEL, T0, make_config, make_vigil, serving_registry

PAUSE_S = 12.0  # past the lease (3 s), a takeover and the other replica's rollback


def replica(tmp_path: Path, url: str, registry: Any, serving: ServingLayer, name: str) -> tuple[Vigil, Membership]:
    (tmp_path / name).mkdir()
    vigil = make_vigil(make_config(tmp_path / name, store={"url": url}), registry=registry)
    vigil._layers[MODEL] = [alias_executor(registry, "champion"), serving]
    membership = Membership(vigil.store, LeaseTiming(renew_every=1.0, lease_ttl=3.0), replica_id=name)
    vigil.fence = membership.fence
    return vigil, membership


def test_a_replica_paused_between_two_layers_does_not_move_the_second_once_taken_over(
        tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    url = fresh_schema_url(postgres_url)
    reg, serving = serving_registry(version="2"), ServingLayer("2")
    a, ma = replica(tmp_path, url, reg, serving, "a")
    b, mb = replica(tmp_path, url, reg, serving, "b")
    ma.tick([MODEL])
    heartbeat = Ticker(ma, [MODEL])
    heartbeat.start()
    monkeypatch.setenv(failpoints.ENV, f"before_layer_move=sleep:{PAUSE_S}@2")  # before the serving layer
    failpoints.reset()
    outcome: list[object] = []

    def rollback_on_a() -> None:
        token = ma.token(MODEL)
        assert token is not None
        try:
            with a.store.fenced(a.fence, MODEL, token):
                outcome.append(a.operator.rollback(RollbackAsk(a.config.model(MODEL), "1", "bad", "api:x", None, T0)))
        except Exception as e:  # what the paused replica ends with, for the test to see
            outcome.append(e)

    on_a = threading.Thread(target=rollback_on_a, daemon=True)
    on_a.start()
    try:
        wait_until(lambda: reg.aliases[(MODEL, "champion")] == "1", timeout=10, what="the alias moved by a")
        heartbeat.paused.set()  # the whole process stalls: the heartbeat too
        wait_until(lambda: MODEL in mb.tick([MODEL]).owned, timeout=PAUSE_S - 4, step=0.2, what="takeover by b")
        token_b = mb.token(MODEL)
        assert token_b is not None
        with b.store.fenced(b.fence, MODEL, token_b):
            [done] = b.rollbacks.reconcile(b.config.model(MODEL), T0 + 60)
        assert str(done.status) == "done" and serving.moves == ["1"]
        serving.version = reg.aliases[(MODEL, "champion")] = "2"  # a person rolls v2 out again, fixed
        on_a.join(PAUSE_S + 20)
    finally:
        heartbeat.halt()
    assert serving.version == "2", f"the paused replica moved the serving layer back: {serving.moves}"
    assert serving.moves == ["1"]
    [lost] = outcome
    assert isinstance(lost, LeaseLost), lost
