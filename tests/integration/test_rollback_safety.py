"""What makes the automatic rollback safe to leave on, cycle by cycle against a fake registry:
it never undoes what a person did since the incident blamed a version, a person's dry run or
failed attempt leaves it armed, a second press or call never goes back further than the
first, a version promoted through the rollback API can itself be rolled back, and a guard's
refusal is recorded once, not every cycle."""
from __future__ import annotations

import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from alerts.slack_actions import SlackAction
from alerts.slack_blocks import render_rollback
from alerts.slack_text import rollback_target
from monitor.api.app import create_app
from monitor.cycle.rollback_intents import CANARY_PROMOTE, RollbackAsk
from monitor.vigil import Vigil
from tests.helpers_vigil import MODEL, T0, incident_prometheus, make_config, make_vigil, model_config, serving_registry

TOKEN = "safety-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
POLICY = {"slo_consecutive_cycles": 2, "resolve_after_cycles": 2}


def _vigil(tmp_path: Any, monkeypatch: pytest.MonkeyPatch, versions: tuple[str, ...], *, bad_from: float = T0 - 300,
           bad_until: float = float("inf"), start: float | None = None, **policy: Any) -> tuple[Vigil, Any]:
    monkeypatch.setenv("SAFETY_TOKEN", TOKEN)
    cfg = make_config(tmp_path, api={"token": "${SAFETY_TOKEN}"}, policy={**POLICY, **policy})
    reg = serving_registry(versions=versions, version=versions[0], **({} if start is None else
                                                                      {"registered_at": start - 40 * 86400}))
    extra = {} if start is None else {"start": start}
    prometheus = incident_prometheus(bad_from=bad_from, bad_until=bad_until)
    return make_vigil(cfg, registry=reg, prometheus=prometheus, **extra), reg


def _serve(v: Vigil, reg: Any, version: str, since: float, cycles: int) -> None:
    """`version` takes the alias and serves `cycles` clean one-minute cycles from `since` (30: known good)."""
    reg.aliases[(MODEL, "champion")] = version
    for i in range(cycles):
        v.run_cycle(MODEL, since + 60 * i)


def _run(v: Vigil, start: float, end: float) -> list[Any]:
    return [v.run_cycle(MODEL, t) for t in range(int(start), int(end) + 1, 60)]


def _actions(v: Vigil) -> list[tuple[str, str, str | None, str, str]]:
    return [(a.kind, a.status, a.from_version, a.to_version, a.actor) for a in v.store.actions(model=MODEL)]


# --------------------------------------------------------------------------- a person's move stands
@pytest.mark.parametrize("fix", ["1", "3"], ids=["revert", "fix-forward"])
def test_a_persons_revert_or_fix_forward_is_never_undone(tmp_path, monkeypatch, fix):
    v, reg = _vigil(tmp_path, monkeypatch, ("0", "1", "2", "3"))
    _serve(v, reg, "0", T0 - 20000, 31)
    _serve(v, reg, "1", T0 - 12000, 31)
    _serve(v, reg, "2", T0 - 2400, 0)  # fine for 35 minutes, then CTR and latency regress at T0 - 300
    _run(v, T0 - 2400, T0 - 180)
    [refused] = v.store.actions(model=MODEL)
    assert refused.status == "refused" and "confidence" in refused.reason  # blamed on v2, not sure enough yet
    reg.aliases[(MODEL, "champion")] = fix  # the paged on-call moves the alias in the MLflow UI
    reports = _run(v, T0 - 120, T0 + 120)
    assert reg.moves == [] and reg.aliases[(MODEL, "champion")] == fix, _actions(v)
    causes = reports[-1].incident.causes if reports[-1].incident else []
    assert not any(c.deploy is not None and c.deploy.version == fix for c in causes), "the fix became a suspect"


def test_vigil_moves_only_away_from_the_version_it_blames(tmp_path, monkeypatch):
    """Even when the guard allows it, an alias someone moved since is left alone, and said once."""
    v, reg = _vigil(tmp_path, monkeypatch, ("1", "2", "3"))
    _serve(v, reg, "1", T0 - 12000, 31)
    _serve(v, reg, "2", T0 - 1200, 0)
    _run(v, T0 - 1200, T0 - 180)
    reg.aliases[(MODEL, "champion")] = "3"  # someone deployed a fix while the incident was open
    reports = _run(v, T0 - 120, T0 + 300)
    assert reports[-1].severity == "critical"
    assert reg.moves == [], _actions(v)
    moved = [a for a in v.store.actions(model=MODEL) if a.status == "refused" and "moved it since" in a.reason]
    assert len(moved) <= 1


# --------------------------------------------------------------------------- people's attempts
def _critical_not_yet_confident(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> tuple[Vigil, Any, TestClient]:
    v, reg = _vigil(tmp_path, monkeypatch, ("1", "2"))
    _serve(v, reg, "1", T0 - 12000, 31)
    _serve(v, reg, "2", T0 - 1200, 0)
    _run(v, T0 - 1200, T0 - 180)
    [refused] = v.store.actions(model=MODEL)
    assert refused.status == "refused" and "confidence" in refused.reason
    return v, reg, TestClient(create_app(v), raise_server_exceptions=False, headers=AUTH)


def test_a_persons_dry_run_or_failed_attempt_leaves_the_automatic_rollback_armed(tmp_path, monkeypatch):
    v, reg, client = _critical_not_yet_confident(tmp_path, monkeypatch)
    r = client.post(f"/v1/models/{MODEL}/rollback", json={"reason": "what would it do?", "dry_run": True})
    assert r.status_code == 200 and r.json()["status"] == "dry_run"
    reg.fail_set_alias = "MLflow answered 503"
    r = client.post(f"/v1/models/{MODEL}/rollback", json={"reason": "roll it back"})
    assert r.status_code == 502
    reg.fail_set_alias = None  # MLflow is back a minute later
    _run(v, T0 - 120, T0 + 60)
    assert reg.moves == [(MODEL, "champion", "1")], _actions(v)
    assert ("rollback", "done", "2", "1", "vigil") in _actions(v)


def test_vigils_own_dry_run_still_settles_its_incident(tmp_path, monkeypatch):
    v, reg = _vigil(tmp_path, monkeypatch, ("1", "2"), rollback={"dry_run": True})
    _serve(v, reg, "1", T0 - 12000, 31)
    _serve(v, reg, "2", T0 - 1200, 0)
    _run(v, T0 - 1200, T0 + 600)
    assert reg.moves == []
    assert [a[1] for a in _actions(v) if a[4] == "vigil"].count("dry_run") == 1


# --------------------------------------------------------------------------- the Slack button and the API default
def _blamed_on_v2(tmp_path: Any, monkeypatch: pytest.MonkeyPatch, v1_cycles: int) -> tuple[Vigil, Any, Any]:
    v, reg = _vigil(tmp_path, monkeypatch, ("0", "1", "2"), rollback={"enabled": False})  # people decide
    _serve(v, reg, "0", T0 - 20000, 31)
    _serve(v, reg, "1", T0 - 12000, v1_cycles)
    _serve(v, reg, "2", T0 - 1200, 0)
    r = _run(v, T0 - 1200, T0)[-1]
    assert r.severity == "critical"
    row = v.store.incident(r.incident_id)
    shown = rollback_target(v.store.outbox_for_prefix(f"incident:{r.incident_id}")[-1].payload)
    assert shown == ("2", "1")  # the button reads "Roll back to v1", its confirmation "from v2 back to v1"
    return v, reg, row


def _press(v: Vigil, row: Any, user: str) -> str:
    return v.operator.slack_action(SlackAction("rollback", MODEL, row.id, user, user, "C1", "1.2", None,
                                               str(time.time())), time.time())


@pytest.mark.parametrize("v1_cycles", [31, 20], ids=["v1-known-good", "v1-young"])
def test_the_button_goes_where_it_says_once_however_often_it_is_pressed(tmp_path, monkeypatch, v1_cycles):
    v, reg, row = _blamed_on_v2(tmp_path, monkeypatch, v1_cycles)
    first = _press(v, row, "U1")  # the owner channel's message
    second = _press(v, row, "U2")  # the on-call channel's, a moment later
    assert reg.moves == [(MODEL, "champion", "1")], (first, second)
    assert first.startswith("Rollback done") and "already points at v1" in second


def test_a_button_pressed_after_someone_moved_the_alias_moves_nothing(tmp_path, monkeypatch):
    v, reg, row = _blamed_on_v2(tmp_path, monkeypatch, 31)
    reg.aliases[(MODEL, "champion")] = "0"  # someone went back further by hand
    answer = _press(v, row, "U1")
    assert reg.moves == [] and "refused" in answer and "serves v0, not v2" in answer


def test_two_default_rollbacks_through_the_api_go_back_once(tmp_path, monkeypatch):
    v, reg, _ = _blamed_on_v2(tmp_path, monkeypatch, 31)
    client = TestClient(create_app(v), raise_server_exceptions=False, headers=AUTH)
    a = client.post(f"/v1/models/{MODEL}/rollback", json={"reason": "alice: CTR down since v2"}).json()
    b = client.post(f"/v1/models/{MODEL}/rollback", json={"reason": "bob: CTR down since v2"}).json()
    assert reg.moves == [(MODEL, "champion", "1")], (a, b)
    assert b["status"] == "noop", b


# --------------------------------------------------------------------------- promotions
def test_a_version_promoted_through_the_rollback_api_is_rolled_back_when_it_regresses(tmp_path, monkeypatch):
    now = time.time()
    v, reg = _vigil(tmp_path, monkeypatch, ("0", "1", "2"), bad_from=now + 1200, start=now)
    _serve(v, reg, "0", now - 30000, 31)
    _serve(v, reg, "1", now - 20000, 31)
    client = TestClient(create_app(v), raise_server_exceptions=False, headers=AUTH)
    r = client.post(f"/v1/models/{MODEL}/rollback", json={"reason": "promote v2, as the canary suggested",
                                                          "to_version": "2"})
    assert r.status_code == 200 and r.json()["status"] == "done", r.text
    assert _actions(v)[-1][0] == "promotion"  # shown as what it was; it uses up no cool-down
    _run(v, now + 60, now + 1800)
    assert reg.moves == [(MODEL, "champion", "2"), (MODEL, "champion", "1")], _actions(v)


def test_an_auto_promotion_does_not_blame_the_champion_it_replaced(tmp_path, monkeypatch):
    now = time.time()
    v, reg = _vigil(tmp_path, monkeypatch, ("0", "1", "2"), bad_from=now + 1200, start=now)
    _serve(v, reg, "0", now - 30000, 31)
    _serve(v, reg, "1", now - 20000, 31)
    m = v.config.model(MODEL)
    out = v.rollbacks.request(RollbackAsk(m, "2", "canary v2 passed 10 cycles in a row", "vigil", None, now,
                                          kind=CANARY_PROMOTE, from_version="1", max_attempts=10))
    assert out.status == "done"
    _run(v, now + 60, now + 1800)
    assert reg.aliases[(MODEL, "champion")] == "1", _actions(v)  # back to v1, not past it to v0


# --------------------------------------------------------------------------- refusals
def test_a_guards_refusal_is_recorded_once_per_incident_not_every_cycle(tmp_path, monkeypatch):
    v, reg = _vigil(tmp_path, monkeypatch, ("0", "1", "2"))
    m = v.config.model(MODEL)
    _serve(v, reg, "0", T0 - 20000, 31)
    _serve(v, reg, "1", T0 - 9000, 1)
    v.operator.rollback(RollbackAsk(m, "0", "an unrelated problem", "api:alice", None, T0 - 7200))
    _serve(v, reg, "2", T0 - 1200, 0)  # v2 regresses inside the 6 h cool-down of that rollback
    _run(v, T0 - 1200, T0 + 1800)
    refused = [a for a in v.store.actions(model=MODEL) if a.status == "refused"]
    audit = [e.action for e in v.store.audit_entries()].count("rollback.refused")
    assert any("cool-down" in a.reason for a in refused)
    assert len(refused) == audit == len({a.detail for a in refused}) <= 3, [a.reason for a in refused]


def test_a_dry_run_that_cannot_read_the_alias_fails_instead_of_guessing(tmp_path, monkeypatch):
    v, reg = _vigil(tmp_path, monkeypatch, ("1", "2"))
    reg.down = True  # MLflow unreachable: the alias cannot be read
    out = v.operator.rollback(RollbackAsk(v.config.model(MODEL), "1", "what would it do?", "cli:alice", None, T0,
                                          dry_run=True))
    assert out.status == "failed" and "cannot be read" in out.detail and "vNone" not in out.detail
    assert reg.moves == []
    # Recorded and audited as any failed ask: it was answered failed, with no trace in `vigil audit`.
    [action] = v.store.actions(model=MODEL)
    assert action.status == "failed" and action.dry_run and action.actor == "cli:alice", action.detail
    assert "cannot be read" in action.detail and "nothing was moved" in action.detail, action.detail
    entries = [(e.actor, e.action) for e in v.store.audit_entries() if e.action.startswith("rollback.")]
    assert entries == [("cli:alice", "rollback.requested"), ("cli:alice", "rollback.failed")], entries


def test_a_persons_dry_run_that_finds_the_alias_at_the_target_leaves_the_rollback_armed(tmp_path, monkeypatch):
    """The on-call reverts to v1 in the MLflow UI, asks the API what a rollback would do ('already
    points at v1', a dry run), then puts v2 back. A dry run is only a question: Vigil's own
    rollback of the incident must still be armed, as after any other dry run of a person."""
    v, reg, client = _critical_not_yet_confident(tmp_path, monkeypatch)
    reg.aliases[(MODEL, "champion")] = "1"
    r = client.post(f"/v1/models/{MODEL}/rollback", json={"reason": "what would it do?", "dry_run": True})
    assert r.status_code == 200 and r.json()["status"] == "noop", r.json()
    reg.aliases[(MODEL, "champion")] = "2"
    _run(v, T0 - 120, T0 + 60)
    assert reg.moves == [(MODEL, "champion", "1")], _actions(v)


# --------------------------------------------------------------------------- planned work
def test_no_automatic_rollback_inside_the_models_maintenance_window(tmp_path, monkeypatch):
    """Planned work (a migration, a deploy whose dip is expected) is the team's to judge: in
    the model's maintenance window the rollback is held, said once, and runs after it if the
    incident is still critical and blamed on the deploy. A person may still roll back."""
    from tests.integration.test_muting import window_around

    monkeypatch.setenv("SAFETY_TOKEN", TOKEN)
    cfg = make_config(tmp_path, api={"token": "${SAFETY_TOKEN}"}, policy=POLICY,
                      time_intervals=[{"name": "migration", "time_intervals": [window_around(T0 - 1200, 25)]}],
                      models=[model_config(mute_time_intervals=["migration"])])
    reg = serving_registry(versions=("1", "2"), version="1")
    v = make_vigil(cfg, registry=reg, prometheus=incident_prometheus(bad_from=T0 - 300))
    _serve(v, reg, "1", T0 - 12000, 31)
    _serve(v, reg, "2", T0 - 1200, 0)

    _run(v, T0 - 1200, T0 + 240)  # critical and sure of the deploy from about T0 - 120; the window ends T0 + 300

    assert reg.moves == [], _actions(v)
    held = [a for a in v.store.actions(model=MODEL) if a.detail == "guard: maintenance"]
    assert len(held) == 1 and "maintenance window migration" in held[0].reason, _actions(v)

    _run(v, T0 + 300, T0 + 420)  # the window is over, the incident still critical
    assert reg.moves == [(MODEL, "champion", "1")], _actions(v)


def test_a_silence_holds_the_pages_but_never_the_rollback_nor_its_announcement(tmp_path, monkeypatch):
    v, reg = _vigil(tmp_path, monkeypatch, ("1", "2"))
    client = TestClient(create_app(v), raise_server_exceptions=False, headers=AUTH)
    r = client.post("/v1/silences", json={"matchers": [f'model="{MODEL}"'], "comment": "noisy CTR, OPS-7",
                                          "starts_at": T0 - 13000, "ends_at": T0 + 86400})
    assert r.status_code in (200, 201), r.text
    _serve(v, reg, "1", T0 - 12000, 31)
    _serve(v, reg, "2", T0 - 1200, 0)

    _run(v, T0 - 1200, T0 + 60)

    assert reg.moves == [(MODEL, "champion", "1")], _actions(v)
    incident_messages = [m for i in v.store.incidents() for m in v.store.outbox_for_prefix(f"incident:{i.id}")]
    assert incident_messages == [], "the silence holds the incident's pages"
    told = v.store.outbox_for_prefix(f"rollback:{MODEL}")
    assert [(m.notifier, m.kind, m.payload["channel"], m.payload["status"]) for m in told] == [
        ("sink", "rollback", "#recsys-alerts", "done")], [(m.notifier, m.payload) for m in told]  # owner, no page
    assert "v2 → v1: done" in render_rollback(told[0].payload)[0]


def test_a_failed_rollback_of_an_incident_nobody_was_told_of_is_told_in_the_owner_channel(tmp_path, monkeypatch):
    v, reg = _vigil(tmp_path, monkeypatch, ("1", "2"), rollback={"max_attempts": 2})
    client = TestClient(create_app(v), raise_server_exceptions=False, headers=AUTH)
    r = client.post("/v1/silences", json={"matchers": [f'model="{MODEL}"'], "comment": "noisy CTR, OPS-7",
                                          "starts_at": T0 - 13000, "ends_at": T0 + 86400})
    assert r.status_code in (200, 201), r.text
    _serve(v, reg, "1", T0 - 12000, 31)
    _serve(v, reg, "2", T0 - 1200, 0)
    reg.fail_set_alias = "MLflow answered 503"

    _run(v, T0 - 1200, T0 + 600)  # several cycles after it gave up: told once, not every cycle

    assert reg.moves == [] and ("rollback", "failed", "2", "1", "vigil") in _actions(v), _actions(v)
    told = v.store.outbox_for_prefix(f"rollback:{MODEL}")
    assert [(m.notifier, m.kind, m.payload["channel"], m.payload["status"]) for m in told] == [
        ("sink", "rollback", "#recsys-alerts", "retrying"),  # its first attempt failed: it tries again
        ("sink", "rollback", "#recsys-alerts", "failed")], [(m.notifier, m.payload) for m in told]
    text = render_rollback(told[-1].payload)[0]
    assert "v2 → v1: failed" in text and "503" in str(told[-1].payload["detail"]), told[-1].payload


def test_a_rollback_abandoned_after_its_incident_resolved_shows_in_the_incidents_message_not_a_note(
        tmp_path, monkeypatch):
    """MLflow is back after the incident resolved: the rollback asked for it is not made then
    (rollback_pending), and its end shows in the resolved incident's message, not a note."""
    v, reg = _vigil(tmp_path, monkeypatch, ("1", "2"), bad_until=T0)
    _serve(v, reg, "1", T0 - 12000, 31)
    _serve(v, reg, "2", T0 - 1200, 0)
    reg.fail_set_alias = "MLflow answered 503"  # the rollback retries cycle after cycle ...
    _run(v, T0 - 1200, T0 + 240)
    [incident] = v.store.incidents(model=MODEL)
    assert incident.status == "resolved" and incident.last_notified_at is not None, "people were told of it"
    reg.fail_set_alias = None  # ... and MLflow is back after its incident resolved

    _run(v, T0 + 300, T0 + 360)

    assert reg.moves == [], _actions(v)
    notes = [m for m in v.store.outbox_for_prefix(f"rollback:{MODEL}") if m.payload.get("channel")]
    assert notes == [], "people were told of the incident: no note as if nobody had been"
    shown = [m.payload for m in v.store.outbox_for_prefix(f"incident:{incident.id}") if m.kind == "incident"]
    assert shown[-1]["status"] == "resolved" and any(
        a["status"] == "failed" and a["detail"] == f"abandoned: incident {incident.id} is resolved, nothing moved"
        for a in shown[-1]["actions"]), shown[-1]


def test_a_rollback_stuck_retrying_for_an_incident_nobody_was_told_of_is_told_once_that_it_retries(
        tmp_path, monkeypatch):
    """Up to `max_attempts` cycles (10 by default: 50 min on a 5 min interval) of Vigil trying to
    change production, perhaps half of it moved, with a muted incident: the owner channel hears
    that it retries at its first failed attempt, once, then its outcome."""
    v, reg = _vigil(tmp_path, monkeypatch, ("1", "2"))
    client = TestClient(create_app(v), raise_server_exceptions=False, headers=AUTH)
    r = client.post("/v1/silences", json={"matchers": [f'model="{MODEL}"'], "comment": "noisy CTR, OPS-7",
                                          "starts_at": T0 - 13000, "ends_at": T0 + 86400})
    assert r.status_code in (200, 201), r.text
    _serve(v, reg, "1", T0 - 12000, 31)
    _serve(v, reg, "2", T0 - 1200, 0)
    reg.fail_set_alias = "MLflow answered 503"

    _run(v, T0 - 1200, T0 + 300)  # several attempts, all failing: still retrying

    assert [a for a in _actions(v) if a[1] != "refused"] == [("rollback", "pending", "2", "1", "vigil")], _actions(v)
    told = v.store.outbox_for_prefix(f"rollback:{MODEL}")
    assert [(m.notifier, m.payload["channel"], m.payload["status"]) for m in told] == [
        ("sink", "#recsys-alerts", "retrying")], [(m.notifier, m.payload) for m in told]
    assert "v2 → v1: retrying" in render_rollback(told[0].payload)[0]
    assert "MLflow answered 503" in told[0].payload["detail"], told[0].payload

    reg.fail_set_alias = None
    _run(v, T0 + 360, T0 + 480)
    told = v.store.outbox_for_prefix(f"rollback:{MODEL}")
    assert [m.payload["status"] for m in told] == ["retrying", "done"], [m.payload for m in told]
