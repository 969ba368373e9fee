"""The fleet's cap on Vigil's own rollbacks: when more models than `fleet_max` are blamed
on their deploys within `fleet_window`, a shared cause (a feature store, an upstream) is
likelier than that many bad deploys, so the rollbacks past the cap are refused, recorded
and audited once per incident, and left to people. A person's rollback is never capped;
a model's own policy cannot raise the fleet's cap; two replicas asking at once on
PostgreSQL count one after the other."""
from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from monitor.api.app import create_app
from monitor.config_errors import ConfigError
from monitor.store.intents import automatic_rollbacks_since
from monitor.store.repository import Store
from monitor.vigil import Vigil
from tests.helpers_replicas import fresh_schema_url
from tests.helpers_vigil import T0, MemoryRegistry, StubPrometheus, make_config, make_vigil, model_config, step_curve

MODELS = ("ranker", "churn", "fraud")
TOKEN = "fleet-token-0123456789"


def _queries(name: str) -> tuple[str, str]:
    return f'ctr_of{{model="{name}"}}', f'p99_of{{model="{name}"}}'


def _fleet(tmp_path: Any, monkeypatch: pytest.MonkeyPatch, **rollback: Any) -> tuple[Vigil, MemoryRegistry]:
    """Three models, each on v1 (known good) and then on v2, whose CTR and latency regress
    at T0 - 300: three critical incidents blamed on three deploys in the same minutes."""
    monkeypatch.setenv("FLEET_TOKEN", TOKEN)
    cfg = make_config(tmp_path, models=[model_config(n) for n in MODELS], api={"token": "${FLEET_TOKEN}"},
                      policy={"slo_consecutive_cycles": 2, "resolve_after_cycles": 2, "rollback": rollback})
    curves: dict[str, Any] = {}
    reg = MemoryRegistry()
    for n in MODELS:
        ctr, p99 = _queries(n)
        curves[ctr], curves[p99] = step_curve(0.05, 0.045, T0 - 300), step_curve(0.1, 0.8, T0 - 300)
        for v in ("1", "2"):
            reg.add_version(n, v, created_at=T0 - 30 * 86400)
        reg.aliases[(n, "champion")] = "1"
    vigil = make_vigil(cfg, registry=reg, prometheus=StubPrometheus(curves), start=T0 - 12000)
    _every_model(vigil, T0 - 12000, 31)  # v1 serves 30 clean cycles: known good
    for n in MODELS:
        reg.aliases[(n, "champion")] = "2"
    return vigil, reg


def _every_model(vigil: Vigil, since: float, cycles: int) -> None:
    for i in range(cycles):
        for n in MODELS:
            vigil.run_cycle(n, since + 60 * i)


def _automatic(vigil: Vigil, model: str) -> list[tuple[str, str]]:
    return [(a.status, a.detail) for a in vigil.store.actions(model=model) if a.actor == "vigil"]


def test_rollbacks_past_the_fleet_cap_are_refused_once_and_left_to_people(tmp_path, monkeypatch):
    vigil, reg = _fleet(tmp_path, monkeypatch, fleet_max=2)

    _every_model(vigil, T0 - 1200, 30)  # to T0 + 540: every incident critical and sure of its deploy

    assert sorted(m for m, _alias, _v in reg.moves) == ["churn", "ranker"], reg.moves  # the first two, in order
    automatic = _automatic(vigil, "fraud")
    assert [d for _, d in automatic if d != "guard: confidence"] == ["guard: fleet_cap"], automatic  # once
    (row,) = [a for a in vigil.store.actions(model="fraud") if a.detail == "guard: fleet_cap"]
    assert row.detail == "guard: fleet_cap"
    assert "2 automatic rollbacks across the fleet in the last 60 min" in row.reason, row.reason
    assert "ranker" in row.reason and "churn" in row.reason, row.reason  # which ones, for the on-call
    assert [e for e in vigil.store.audit_entries() if e.action == "rollback.refused"
            and e.target == "model:fraud"], "the refusal is audited"

    # A person may still roll it back: the cap limits Vigil, not the on-call.
    client = TestClient(create_app(vigil), raise_server_exceptions=False,
                        headers={"Authorization": f"Bearer {TOKEN}"})
    r = client.post("/v1/models/fraud/rollback", json={"reason": "on-call: fraud's v2 is bad too"})
    assert r.status_code == 200 and r.json()["status"] == "done", r.text
    assert reg.aliases[("fraud", "champion")] == "1"


def test_a_cap_refusal_stands_for_its_incident_once_the_window_has_room(tmp_path, monkeypatch):
    """The cap says "likelier one shared cause: people decide"; rolling the incident back on
    its own once the first two left the window only slowed Vigil down, it did not stop it."""
    vigil, reg = _fleet(tmp_path, monkeypatch, fleet_max=2, fleet_window="30m")
    _every_model(vigil, T0 - 1200, 30)
    assert reg.aliases[("fraud", "champion")] == "2"

    _every_model(vigil, T0 + 600, 25)  # the first two rollbacks leave the 30-minute window

    assert reg.aliases[("fraud", "champion")] == "2", _automatic(vigil, "fraud")
    assert [s for s, d in _automatic(vigil, "fraud") if d != "guard: confidence"] == ["refused"]
    client = TestClient(create_app(vigil), raise_server_exceptions=False,
                        headers={"Authorization": f"Bearer {TOKEN}"})
    r = client.post("/v1/models/fraud/rollback", json={"reason": "on-call: fraud's v2 is bad too"})
    assert r.status_code == 200 and r.json()["status"] == "done", r.text  # a person still may


def test_no_fleet_cap_when_it_is_null(tmp_path, monkeypatch):
    vigil, reg = _fleet(tmp_path, monkeypatch, fleet_max=None, max_per_day=2)
    _every_model(vigil, T0 - 1200, 30)
    assert sorted(m for m, _alias, _v in reg.moves) == sorted(MODELS)


def test_a_models_own_policy_cannot_raise_the_fleets_cap(tmp_path):
    models = [model_config("ranker", policy={"rollback": {"fleet_max": 50}}), model_config("churn")]
    with pytest.raises(ConfigError) as e:
        make_config(tmp_path, models=models)
    assert "models[0](ranker).policy.rollback.fleet_max" in str(e.value), str(e.value)
    assert "fleet-wide" in str(e.value) and "top-level policy.rollback" in str(e.value), str(e.value)


def test_two_replicas_asking_at_once_count_one_after_the_other(postgres_url):
    """The count takes a lock held until its transaction commits (with the intent it let
    through), so a second replica's count waits for it and sees that intent."""
    url = fresh_schema_url(postgres_url)
    a, b = Store(url), Store(url)
    model, now = "fraud", time.time()
    seen: dict[str, int] = {}

    def second() -> None:
        with b.tx() as s:
            seen["b"] = len([m for m in automatic_rollbacks_since(s, now - 60) if m == model])

    with a.tx() as s:
        seen["a"] = len([m for m in automatic_rollbacks_since(s, now - 60) if m == model])
        racer = threading.Thread(target=second)
        racer.start()
        time.sleep(0.5)  # the other replica asks meanwhile
        assert "b" not in seen, "the second count did not wait for the first transaction"
        _automatic_intent(a, s, model, now)
    racer.join(timeout=10)

    assert seen == {"a": 0, "b": 1}


def _automatic_intent(store: Store, s: Any, model: str, now: float) -> None:
    from monitor.store.intents import add_intent

    action = store.add_action(s, model=model, kind="rollback", incident_id=None, from_version="2", to_version="1",
                              status="pending", reason="automatic", detail="in flight", actor="vigil",
                              dry_run=False, at=now)
    add_intent(s, model=model, incident_id=None, action_id=action.id, from_version="2", to_version="1",
               executors=["mlflow"], fencing_token=None, actor="vigil", reason="automatic", forced=False,
               next_attempt_at=now, max_attempts=10, created_at=now, updated_at=now)




def test_a_large_cap_names_ten_models_and_counts_the_rest(tmp_path):
    from monitor.cycle.rollback_ask import FleetCap

    store, now = Store(f"sqlite:///{tmp_path / 'v.db'}"), 1_800_000_000.0
    with store.tx() as s:
        for i in range(12):
            _automatic_intent(store, s, f"model-{i:02d}", now - 600 + i)
    with store.tx() as s:
        said = FleetCap(12, 3600.0).reached(s, now)
    assert said.startswith("fleet cap: 12 automatic rollbacks across the fleet in the last 60 min (model-11, "), said
    assert "model-02 and 2 more) >= fleet_max 12" in said, said
