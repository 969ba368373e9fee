"""Rollback details the end-to-end tests in test_api.py do not reach."""
from __future__ import annotations

import time

from tests.unit.monitor.test_api import ROLLBACK, build


def test_a_rollback_stands_when_announcing_it_fails(tmp_path, monkeypatch, caplog):
    api = build(tmp_path, monkeypatch)
    api.deploy("2", time.time() - 3600)

    def outbox_down() -> int:
        raise ConnectionError("slack unreachable")

    monkeypatch.setattr(api.vigil, "deliver", outbox_down)
    r = api.post(ROLLBACK, {"reason": "CTR -10% since v2"})
    assert r.status_code == 200 and r.json()["status"] == "done"
    assert api.alias() == "1"
    assert "outbox delivery after rollback failed" in caplog.text


def test_a_second_rollback_while_one_is_in_flight_is_202_pending_at_once(tmp_path, monkeypatch):
    """README: 202 `pending` while another rollback of the model is in flight. On one
    replica the second request instead waited on an in-process lock for the whole first
    rollback (a slow registry, a serving layer becoming Ready), so the second person's
    client hung or timed out, and then got a different answer (noop) anyway."""
    import threading

    from tests.unit.monitor.test_api import MODEL

    api = build(tmp_path, monkeypatch)
    api.deploy("2", time.time() - 3600)
    entered, release = threading.Event(), threading.Event()
    move = api.registry.set_alias

    def slow_move(name: str, alias: str, version: str) -> None:
        entered.set()
        release.wait(20)
        move(name, alias, version)

    monkeypatch.setattr(api.registry, "set_alias", slow_move)
    answers: dict[str, object] = {}
    first = threading.Thread(target=lambda: answers.update(first=api.post(ROLLBACK, {"reason": "CTR -10% since v2"})))
    first.start()
    try:
        assert entered.wait(10), "the first rollback reached the registry"
        second = threading.Thread(target=lambda: answers.update(
            second=api.post(ROLLBACK, {"reason": "me too"}, {"Idempotency-Key": "other-person"})))
        second.start()
        second.join(5)
        assert not second.is_alive(), "the second request waited for the first rollback to finish"
        r = answers["second"]
        assert r.status_code == 202 and r.json()["status"] == "pending" and "in flight" in r.json()["detail"]
    finally:
        release.set()
        first.join(20)
    assert answers["first"].status_code == 200 and answers["first"].json()["status"] == "done"
    assert api.registry.moves == [(MODEL, "champion", "1")]
    assert api.app.state.rollback_locks._locks == {}, "no lock kept per Idempotency-Key once it is answered"


def test_an_idempotency_key_from_days_ago_is_not_replayed_as_todays_rollback(tmp_path, monkeypatch):
    """Keys were kept for ever: a client that derives its key from the request (or a
    runbook reusing one) asking again days later got the old `done` replayed, and nothing
    moved while the alias served a bad version. A key now answers retries for 24 h."""
    from monitor.store.tables import IdempotencyRow
    from tests.unit.monitor.test_api import MODEL

    api = build(tmp_path, monkeypatch)
    api.deploy("2", time.time() - 3600)
    key, body = {"Idempotency-Key": "rb-recommender-ctr"}, {"reason": "CTR -10% since the deploy"}
    first = api.post(ROLLBACK, body, key)
    assert first.json()["status"] == "done" and api.alias() == "1"
    assert api.post(ROLLBACK, body, key).headers["idempotent-replayed"] == "true", "a retry within the day"

    with api.vigil.store.tx() as s:  # two days pass; a new version ships and is bad too
        row = s.get(IdempotencyRow, (key["Idempotency-Key"], f"rollback:{MODEL}"))
        row.created_at -= 2 * 86400
    api.deploy("3", time.time() - 60)
    again = api.post(ROLLBACK, body, key)
    assert "idempotent-replayed" not in again.headers
    assert again.status_code == 200 and again.json()["status"] == "done" and api.alias() == "1"
    assert again.json()["from_version"] == "3"
    replay = api.post(ROLLBACK, body, key)
    assert replay.headers["idempotent-replayed"] == "true" and replay.json() == again.json()


def test_a_retry_of_a_pending_rollback_gets_its_outcome_never_a_second_rollback(tmp_path, monkeypatch):
    """A 202 `pending` was not kept under its Idempotency-Key: the client retrying with
    the same key after that rollback finished (and a new version shipped) started a NEW
    rollback, undoing the deploy made in between. A retry now gets the outcome of the
    rollback its key started: pending while it is in flight, then its final result."""
    from monitor.sources.errors import SourceUnavailable
    from tests.helpers_vigil import MODEL, model_config

    api = build(tmp_path, monkeypatch, models=[model_config(serving={"kind": "mlflow_alias", "alias": "production"})])
    api.deploy("2", time.time() - 3600)
    api.registry.aliases[(MODEL, "production")] = "2"
    set_alias = api.registry.set_alias

    def production_down(name: str, alias: str, version: str) -> None:
        if alias == "production":
            raise SourceUnavailable("mlflow", "http://127.0.0.1:9", "MLflow answered 503")
        set_alias(name, alias, version)

    monkeypatch.setattr(api.registry, "set_alias", production_down)
    key, body = {"Idempotency-Key": "rb-pending"}, {"reason": "CTR -10% since v2"}
    first = api.post(ROLLBACK, body, key)
    assert first.status_code == 202 and first.json()["status"] == "pending", first.json()
    again = api.post(ROLLBACK, body, key)
    assert again.status_code == 202 and again.headers["idempotent-replayed"] == "true"
    assert again.json()["status"] == "pending" and again.json()["from_version"] == "2"

    monkeypatch.setattr(api.registry, "set_alias", set_alias)  # production answers; the cycle finishes it
    [done] = api.vigil.operator.runner.reconcile(api.vigil.config.model(MODEL), time.time())
    assert done.status == "done" and api.registry.aliases[(MODEL, "production")] == "1"
    api.deploy("3", time.time())  # a fix ships afterwards
    api.registry.aliases[(MODEL, "production")] = "3"
    moves = list(api.registry.moves)

    late = api.post(ROLLBACK, body, key)  # the client's retry, after a timeout
    assert late.headers["idempotent-replayed"] == "true"
    assert late.status_code == 200 and late.json()["status"] == "done", late.json()
    assert (late.json()["from_version"], late.json()["to_version"]) == ("2", "1")
    assert api.registry.moves == moves and api.alias() == "3", "the retry rolled back the deploy made since"
    assert len(api.vigil.store.actions(model=MODEL)) == 1


def test_a_retry_of_a_failed_rollback_never_rolls_back_a_deploy_made_since(tmp_path, monkeypatch):
    """A 502 was not kept: the same key retried after a fix shipped started a new
    rollback from the fix. A retry now repeats the same rollback only while the alias
    still serves what it moved away from; otherwise it is refused (409), nothing moved."""
    api = build(tmp_path, monkeypatch)
    api.deploy("2", time.time() - 3600)
    key, body = {"Idempotency-Key": "rb-failed"}, {"reason": "CTR -10% since v2"}
    api.registry.fail_set_alias = "MLflow answered 503"
    assert api.post(ROLLBACK, body, key).status_code == 502
    api.registry.fail_set_alias = None
    api.deploy("3", time.time())  # a fix ships; the client's retry comes later
    late = api.post(ROLLBACK, body, key)
    assert api.alias() == "3" and api.registry.moves == [], "the retry rolled back the deploy made since"
    assert late.status_code == 409 and "v3" in late.json()["error"], late.json()


def test_a_retry_after_a_crash_mid_rollback_follows_that_rollback_never_starts_another(tmp_path, monkeypatch):
    """The key's answer was stored only after the rollback ended: a crash (kill -9) after
    the alias moved left the key unknown, and the client's retry, once the rollback was
    finished at start-up and a fix had shipped, rolled the fix back. The answer pointing at
    the intent is now committed with the intent, so the retry gets that rollback's outcome."""
    from monitor.failpoints import ENV, FailPointError
    from tests.unit.monitor.test_api import MODEL

    api = build(tmp_path, monkeypatch)
    api.deploy("2", time.time() - 3600)
    key, body = {"Idempotency-Key": "rb-crash"}, {"reason": "CTR -10% since v2"}
    monkeypatch.setenv(ENV, "after_alias_move=raise")  # the process "dies" right after the move
    try:
        crashed = api.post(ROLLBACK, body, key)
    except FailPointError:
        crashed = None
    monkeypatch.delenv(ENV)
    assert crashed is None or crashed.status_code == 500
    assert api.alias() == "1"

    api.vigil.reconcile(time.time())  # start-up finishes the rollback
    assert [a.status for a in api.vigil.store.actions(model=MODEL)] == ["done"]
    api.deploy("3", time.time())  # a fix ships; the client's retry comes after it
    late = api.post(ROLLBACK, body, key)
    assert late.headers.get("idempotent-replayed") == "true", late.json()
    assert late.status_code == 200 and late.json()["status"] == "done"
    assert (late.json()["from_version"], late.json()["to_version"]) == ("2", "1")
    assert api.alias() == "3" and api.registry.moves == [(MODEL, "champion", "1")], "the retry rolled back v3"
    assert len(api.vigil.store.actions(model=MODEL)) == 1


def test_a_reason_of_spaces_alone_is_refused_naming_it(tmp_path, monkeypatch, capsys):
    """`reason` is the audit log's why: three spaces passed `min_length=3` and a rollback
    (or a silence) was recorded with a blank one; `vigil rollback --reason ""` too."""
    import pytest

    from monitor.cli import build_parser
    from tests.unit.monitor.test_api import MODEL, T0

    api = build(tmp_path, monkeypatch)
    api.deploy("2", time.time() - 3600)
    incident_id = api.vigil.run_cycle(MODEL, T0).incident_id
    for url, body in ((ROLLBACK, {"reason": "   "}), (ROLLBACK, {"reason": " \t\n ", "to_version": "1"}),
                      (f"/v1/incidents/{incident_id}/silence", {"duration_s": 60, "reason": "    "})):
        r = api.post(url, body)
        assert r.status_code == 422, r.text
        assert r.json()["fields"] == [{"field": "reason", "message": "expected why, in words: at least 3 "
                                                                     "characters besides spaces"}]
    assert api.alias() == "2" and api.audit_actions() == []
    with pytest.raises(SystemExit):
        build_parser().parse_args(["rollback", MODEL, "--config", "vigil.yaml", "--reason", "  "])
    assert "--reason: expected why, in words" in capsys.readouterr().err


def test_an_empty_idempotency_key_is_refused_not_ignored(tmp_path, monkeypatch):
    """`Idempotency-Key:` with nothing after it (a client's unset variable) was taken as no
    key at all: the client believed its retry safe, and each retry was a new request."""
    api = build(tmp_path, monkeypatch)
    api.deploy("2", time.time() - 3600)
    for key in ("", "   "):
        r = api.post(ROLLBACK, {"reason": "CTR -10% since v2"}, {"Idempotency-Key": key})
        assert r.status_code == 422, r.text
        assert [f["field"] for f in r.json()["fields"]] == ["header.idempotency-key"]
    assert api.alias() == "2" and api.audit_actions() == []


def test_the_answer_says_where_to_watch_the_rollback(tmp_path, monkeypatch):
    """A 202 `pending` (or any answer) named no place to follow the rollback: a client
    without an Idempotency-Key had nothing to poll. It names the incident it answers, whose
    actions show it, else the model, which shows the version serving."""
    from tests.unit.monitor.test_api import MODEL, T0

    api = build(tmp_path, monkeypatch)
    api.deploy("2", time.time() - 3600)
    r = api.post(ROLLBACK, {"reason": "a dry run first", "dry_run": True})
    assert r.json()["incident_id"] is None and r.json()["watch"] == f"/v1/models/{MODEL}"
    assert api.client.get(r.json()["watch"]).status_code == 200
    incident_id = api.vigil.run_cycle(MODEL, T0).incident_id
    r = api.post(ROLLBACK, {"reason": "CTR -10% since v2"})
    assert r.status_code == 200 and r.json()["incident_id"] == incident_id
    assert r.json()["watch"] == f"/v1/incidents/{incident_id}"
    actions = api.client.get(r.json()["watch"]).json()["actions"]
    assert [(a["kind"], a["status"]) for a in actions][-1:] == [("rollback", "done")]


def test_two_people_rolling_back_at_once_get_the_first_rollback_not_a_second(tmp_path, monkeypatch):
    """Two on-call people press at once: the second read the alias at v2, the first's rollback
    then moved it to v1 and finished, and the second recorded a rollback of its own that moved
    nothing yet said "moved mlflow_alias from v2 to v1": two rollbacks for one move (two deploy
    events and announcements, the cool-down and daily cap counted twice). The second now gets
    the first's outcome, naming it."""
    import threading

    from monitor.cycle.rollback_intents import RollbackRunner
    from monitor.store.intents import RollbackIntentRow
    from tests.unit.monitor.test_api import MODEL

    api = build(tmp_path, monkeypatch)
    api.deploy("2", time.time() - 3600)
    off_target = RollbackRunner._off_target
    answers: dict[str, object] = {}
    first = threading.Thread(target=lambda: answers.update(first=api.post(ROLLBACK, {"reason": "CTR -10%"})))

    def second_reads_then_first_lands(*args: object) -> object:
        read = off_target(*args)
        if not first.is_alive() and "first" not in answers:  # the second person's read: the first lands now
            first.start()
            first.join(20)
        return read

    monkeypatch.setattr(RollbackRunner, "_off_target", staticmethod(second_reads_then_first_lands))
    second = api.post(ROLLBACK, {"reason": "me too"})
    assert answers["first"].status_code == 200 and answers["first"].json()["status"] == "done"
    [action] = api.vigil.store.actions(model=MODEL)
    assert second.status_code == 200, second.json()
    assert second.json()["status"] == "done" and second.json()["to_version"] == "1"
    with api.vigil.store.tx() as s:
        [intent] = s.query(RollbackIntentRow).all()
    assert f"rollback {intent.id} by api:admin" in second.json()["detail"], second.json()["detail"]
    assert api.registry.moves == [(MODEL, "champion", "1")]


def test_a_rollback_overtaken_by_one_that_failed_is_409_naming_it(tmp_path, monkeypatch):
    """The first of two people at once failed (the registry refused the move): the second is
    told so, naming it, and moves nothing on a read taken before it (ask again)."""
    import threading

    from monitor.cycle.rollback_intents import RollbackRunner
    from monitor.sources.errors import SourceUnavailable
    from tests.unit.monitor.test_api import MODEL

    api = build(tmp_path, monkeypatch)
    api.deploy("2", time.time() - 3600)
    off_target, set_alias = RollbackRunner._off_target, api.registry.set_alias
    answers: dict[str, object] = {}
    first = threading.Thread(target=lambda: answers.update(first=api.post(ROLLBACK, {"reason": "CTR -10%"})))

    def registry_refuses(name: str, alias: str, version: str) -> None:
        raise SourceUnavailable("mlflow", "http://127.0.0.1:9", "MLflow answered 503")

    def second_reads_then_first_fails(*args: object) -> object:
        read = off_target(*args)
        if not first.is_alive() and "first" not in answers:
            monkeypatch.setattr(api.registry, "set_alias", registry_refuses)
            first.start()
            first.join(20)
            monkeypatch.setattr(api.registry, "set_alias", set_alias)
        return read

    monkeypatch.setattr(RollbackRunner, "_off_target", staticmethod(second_reads_then_first_fails))
    second = api.post(ROLLBACK, {"reason": "me too"})
    assert answers["first"].status_code == 502
    assert second.status_code == 409, second.json()
    assert "by api:admin" in second.json()["error"] and "ended failed" in second.json()["error"], second.json()
    assert api.registry.moves == [] and api.alias() == "2"
    assert len(api.vigil.store.actions(model=MODEL)) == 1
