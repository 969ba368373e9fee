"""On-call cancels a pending rollback (`POST /v1/models/{name}/rollback/cancel`, `vigil rollback
cancel MODEL`): MLflow answering 503 to set_alias kept Vigil's rollback retrying, and people
could only wait or turn automatic rollback off. Cancelled, nothing moves when MLflow is back;
a rollback that moved already is said so (its lease holder finishes it), and nothing moves back."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from monitor.cli import main
from tests.helpers_vigil import (
    MODEL,
    T0,
    MemoryRegistry,
    incident_prometheus,
    make_config,
    make_vigil,
    model_config,
    serving_registry,
)
from tests.unit.monitor.test_api import TOKEN, Api

CANCEL = f"/v1/models/{MODEL}/rollback/cancel"
POLICY = {"slo_consecutive_cycles": 2, "resolve_after_cycles": 2}


def _stuck(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Api, MemoryRegistry]:
    """v2 deployed, critical at T0; Vigil's rollback to v1 recorded, MLflow refusing set_alias."""
    monkeypatch.setenv("VIGIL_TEST_TOKEN", TOKEN)
    reg = serving_registry()
    cfg = make_config(tmp_path, api={"token": "${VIGIL_TEST_TOKEN:-}"}, policy=POLICY)
    vigil = make_vigil(cfg, registry=reg, prometheus=incident_prometheus(bad_from=T0 - 300), notifiers={})
    vigil.run_cycle(MODEL, T0 - 1200)
    reg.aliases[(MODEL, "champion")] = "2"
    for t in (T0 - 900, T0 - 600, T0 - 300):
        vigil.run_cycle(MODEL, t)
    reg.fail_set_alias = "MLflow answered 503"
    vigil.run_cycle(MODEL, T0)
    assert [a.status for a in vigil.store.actions(model=MODEL)] == ["pending"]
    return Api(vigil, reg), reg


def test_a_cancelled_rollback_moves_nothing_when_mlflow_is_back(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    api, reg = _stuck(tmp_path, monkeypatch)
    r = api.post(CANCEL, {"reason": "handling it by hand"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["status"], body["from_version"], body["to_version"], body["incident_id"]) == ("cancelled", "2", "1", 1)
    assert body["detail"] == "cancelled by api:admin: handling it by hand, nothing moved"
    reg.fail_set_alias = None
    for i in range(1, 4):
        api.vigil.run_cycle(MODEL, T0 + 60 * i)
    assert reg.moves == [] and api.alias() == "2"
    [action] = api.vigil.store.actions(model=MODEL)
    assert (action.status, action.detail) == ("failed", body["detail"])
    cancel = [e for e in api.vigil.store.audit_entries() if e.action == "rollback.cancel"]
    assert [e.actor for e in cancel] == ["api:admin"]
    again = api.post(CANCEL, {"reason": "handling it by hand"})
    assert again.status_code == 409 and "nothing pending to cancel" in again.json()["error"]


def test_cancelling_a_rollback_that_moved_already_says_so_and_moves_nothing_back(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    api, reg = _stuck(tmp_path, monkeypatch)
    reg.aliases[(MODEL, "champion")] = "1"  # a 503 whose write landed
    r = api.post(CANCEL, {"reason": "too late?"})
    assert r.status_code == 409, r.text
    assert r.json()["error"] == ("mlflow_alias reads v1 already (rollback 1's move landed, its answer lost): the "
                                 f"replica that holds {MODEL}'s lease finishes and verifies it at its next cycle; "
                                 "nothing cancelled, nothing moved back")
    assert api.alias() == "1" and reg.moves == []
    [action] = api.vigil.store.actions(model=MODEL)
    assert action.status == "pending"  # the API drives nothing: the lease holder's cycle does
    api.vigil.run_cycle(MODEL, T0 + 60)
    assert [a.status for a in api.vigil.store.actions(model=MODEL)] == ["done"] and reg.moves == []


def test_the_cli_cancels_a_pending_rollback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    api, reg = _stuck(tmp_path, monkeypatch)
    cfg = tmp_path / "vigil.yaml"
    cfg.write_text(yaml.safe_dump({"store": {"url": f"sqlite:///{tmp_path / 'vigil.db'}"},
                                   "sources": {"mlflow": {"tracking_uri": "http://127.0.0.1:9"}},
                                   "models": [model_config()]}))
    monkeypatch.setattr("monitor.cli_rollback._vigil", lambda _cfg: api.vigil)
    assert main(["rollback", "cancel", MODEL, "--config", str(cfg), "--reason", "on it", "--actor", "ana"]) == 0
    assert '"status": "cancelled"' in capsys.readouterr().out
    [action] = api.vigil.store.actions(model=MODEL)
    assert (action.status, action.detail) == ("failed", "cancelled by cli:ana: on it, nothing moved")
    assert main(["rollback", "cancel", MODEL, "--config", str(cfg)]) == 1  # nothing pending now


def test_cancel_leaves_a_pending_canary_pull_alone_and_says_only_a_canary_action_is_pending(tmp_path: Path) -> None:
    """`rollback cancel` took whatever intent was pending: a canary pull retrying against
    MLflow was cancelled as "rollback N", and the bad challenger kept its share of traffic."""
    from alerts.rollback import ActionStatus
    from monitor.cycle.rollback_ask import CANARY_PULL
    from monitor.cycle.rollback_cancel import cancel
    from monitor.store.intents import add_intent

    cfg = make_config(tmp_path, models=[model_config(canary={"alias": "challenger", "window": "1h"})])
    reg = serving_registry(version="3", versions=("1", "2", "3", "4"))
    reg.aliases[(MODEL, "challenger")] = "4"
    vigil = make_vigil(cfg, registry=reg)
    with vigil.store.tx() as s:
        action = vigil.store.add_action(s, model=MODEL, kind=CANARY_PULL, incident_id=None, from_version="4",
                                        to_version="3", status=ActionStatus.PENDING, reason="canary v4 failed: ctr",
                                        detail="retrying", actor="vigil", dry_run=False, at=T0)
        add_intent(s, model=MODEL, incident_id=None, action_id=action.id, from_version="4", to_version="3",
                   executors=["mlflow_challenger_alias"], fencing_token=None, actor="vigil", reason="canary v4 failed",
                   forced=False, max_attempts=10, next_attempt_at=T0, created_at=T0, updated_at=T0)
    said = cancel(vigil.rollbacks, vigil.config.model(MODEL), "api:alice", "by hand", T0 + 60)
    assert said.status == "none", said
    assert "canary pull" in said.detail and "no rollback" in said.detail, said.detail
    assert [(a.kind, str(a.status)) for a in vigil.store.actions(model=MODEL)] == [(CANARY_PULL, "pending")]
    assert not [e for e in vigil.store.audit_entries() if e.action == "rollback.cancel"]
