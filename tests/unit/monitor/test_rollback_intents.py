"""Rollback as a durable intent (issue 11, rows 1 and 5): a crash between moving the
alias and recording it, and a registry outage in the middle of a rollback."""
from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from alerts.outbox import MessageKind
from monitor.cycle.rollback_intents import RollbackAsk
from monitor.failpoints import ENV, FailPointError
from monitor.vigil import Vigil
from tests.helpers_vigil import (
    MODEL,
    T0,
    incident_prometheus,
    make_config,
    make_vigil,
    model_config,
    serving_registry,
)

BAD_FROM = T0 - 300


def deployed(tmp_path: Path, models: list[dict[str, Any]] | None = None, *, later: float = 0.0,
             **policy: Any) -> tuple[Vigil, Any]:
    """v1 served for a month; v2 took the alias 15 min before the first cycle that sees the damage
    (at T0 + `later`)."""
    cfg = make_config(tmp_path, models=models,
                      policy={"slo_consecutive_cycles": 2, "resolve_after_cycles": 2, **policy})
    reg = serving_registry()
    vigil = make_vigil(cfg, registry=reg, prometheus=incident_prometheus(bad_from=BAD_FROM + later))
    vigil.run_cycle(MODEL, T0 + later - 1200)
    reg.aliases[(MODEL, "champion")] = "2"
    for t in (T0 - 900, T0 - 600, T0 - 300):
        vigil.run_cycle(MODEL, t + later)
    return vigil, reg


def incident_rows(vigil: Vigil) -> list[Any]:
    return [r for r in vigil.store.outbox_for_prefix("incident:1")]


def test_a_crash_after_the_alias_move_is_finished_at_the_next_cycle(tmp_path, monkeypatch):
    vigil, reg = deployed(tmp_path)
    monkeypatch.setenv(ENV, "after_alias_move=raise")
    with pytest.raises(FailPointError):
        vigil.run_cycle(MODEL, T0)  # critical, blamed on v2: the alias moves, then the process "dies"
    monkeypatch.delenv(ENV)
    assert reg.aliases[(MODEL, "champion")] == "1"

    vigil.run_cycle(MODEL, T0 + 60)
    [action] = vigil.store.actions(model=MODEL)
    assert (action.status, action.from_version, action.to_version) == ("done", "2", "1")
    assert reg.moves == [(MODEL, "champion", "1")]  # moved once, never again
    # Vigil's own move, not an external deploy:
    assert [d.source for d in vigil.store.deploys(MODEL)][-1] == "rollback"
    assert "registry" not in [d.source for d in vigil.store.deploys(MODEL) if d.at >= T0]
    audit = [e.action for e in vigil.store.audit_entries()]
    assert audit.count("rollback.requested") == 1 and audit.count("rollback.done") == 1
    # The guard counts it: cool-down and daily cap see one rollback.
    assert len(vigil.store.rollback_times(MODEL)) == 1
    # The incident message now shows the rollback done (so no "Roll back" button is offered).
    last = [r for r in incident_rows(vigil) if r.kind == MessageKind.INCIDENT][-1]
    assert [a["status"] for a in last.payload["actions"]] == ["done"]


def test_after_a_half_recorded_rollback_a_default_manual_rollback_never_goes_to_the_bad_version(tmp_path,
                                                                                             monkeypatch):
    vigil, reg = deployed(tmp_path)
    monkeypatch.setenv(ENV, "after_alias_move=raise")
    with pytest.raises(FailPointError):
        vigil.run_cycle(MODEL, T0)
    monkeypatch.delenv(ENV)
    m = vigil.config.model(MODEL)
    # Before any reconcile: the default target must not be v2, which the open incident blames.
    choice = vigil.operator.choose_target(m, T0 + 30)
    assert choice.version != "2"
    out = vigil.operator.rollback(RollbackAsk(m, choice.version or "1", "on-call", "api:test", None, T0 + 30))
    assert out.to_version == "1" and reg.aliases[(MODEL, "champion")] == "1"
    assert reg.moves == [(MODEL, "champion", "1")]
    # Explicitly to v2: refused without force, audited as forced with it. (The store may still
    # say v2 serves: then it is a `stay` ask, which moves nothing while v1 serves.)
    unforced = vigil.operator.choose_target(m, T0 + 40, asked="2")
    assert unforced.version is None or unforced.stay
    if unforced.version is not None:
        out = vigil.operator.rollback(RollbackAsk(m, "2", "on-call", "api:test", None, T0 + 40, stay=True))
        assert out.status in ("refused", "pending"), out  # pending: the crashed cycle's rollback, in flight
        assert reg.moves == [(MODEL, "champion", "1")]
    forced = vigil.operator.choose_target(m, T0 + 40, asked="2", force=True, force_reason="v2 is fine after all")
    assert forced.version == "2" and forced.forced


def test_a_registry_outage_mid_rollback_retries_without_resending_the_incident(tmp_path):
    vigil, reg = deployed(tmp_path)
    reg.fail_set_alias = "MLflow answered 503"
    for i in range(4):
        vigil.run_cycle(MODEL, T0 + 60 * i)
    [action] = vigil.store.actions(model=MODEL)
    assert action.status == "pending" and "MLflow answered 503" in action.detail
    rows = incident_rows(vigil)
    # Opened (owner + on-call), plus one update each saying the rollback is stuck: not one per attempt.
    assert len(rows) == 4, [(r.key, r.payload.get("actions")) for r in rows]
    # Readiness tells the truth: the registry failing the rollback is down, even though the poll reached it.
    mlflow = vigil.readiness()["rollback:mlflow_alias"]
    assert mlflow.status == "down" and "MLflow answered 503" in mlflow.detail

    reg.fail_set_alias = None
    vigil.run_cycle(MODEL, T0 + 300)
    [action] = vigil.store.actions(model=MODEL)
    assert action.status == "done" and reg.moves == [(MODEL, "champion", "1")]
    assert vigil.readiness()["rollback:mlflow_alias"].status == "up"
    assert len(incident_rows(vigil)) == 6  # and one update each with the outcome
    rollback_msgs = [r for r in vigil.store.outbox_for_prefix(f"rollback:{MODEL}")]
    assert len(rollback_msgs) == len(vigil.notifiers.taking(MessageKind.ROLLBACK))


def test_an_alias_moved_by_someone_else_meanwhile_is_left_alone(tmp_path):
    vigil, reg = deployed(tmp_path)
    reg.fail_set_alias = "MLflow answered 503"
    vigil.run_cycle(MODEL, T0)
    reg.fail_set_alias = None
    reg.aliases[(MODEL, "champion")] = "3"  # a human deployed a fix while the rollback waited
    reg.add_version(MODEL, "3", created_at=T0)
    vigil.run_cycle(MODEL, T0 + 60)
    [action] = vigil.store.actions(model=MODEL)
    assert action.status == "failed" and "serves v3" in action.detail and "left alone" in action.detail
    assert reg.aliases[(MODEL, "champion")] == "3" and reg.moves == []


def test_a_rollback_that_keeps_failing_gives_up_after_max_attempts(tmp_path):
    vigil, reg = deployed(tmp_path, rollback={"max_attempts": 3})
    reg.fail_set_alias = "MLflow answered 503"
    for i in range(5):
        vigil.run_cycle(MODEL, T0 + 60 * i)
    [action] = vigil.store.actions(model=MODEL)
    assert action.status == "failed" and "gave up after 3 attempts" in action.detail
    assert reg.moves == []


def test_start_up_reconciles_a_pending_intent(tmp_path, monkeypatch):
    vigil, reg = deployed(tmp_path)
    monkeypatch.setenv(ENV, "rollback_after_intent=raise")
    with pytest.raises(FailPointError):
        vigil.run_cycle(MODEL, T0)  # intent recorded, nothing moved yet
    monkeypatch.delenv(ENV)
    assert reg.moves == [] and vigil.store.actions(model=MODEL)[0].status == "pending"
    vigil.reconcile(T0 + 5)
    assert vigil.store.actions(model=MODEL)[0].status == "done" and reg.moves == [(MODEL, "champion", "1")]


def test_the_guard_counts_a_pending_rollback(tmp_path):
    vigil, reg = deployed(tmp_path)
    reg.fail_set_alias = "MLflow answered 503"
    vigil.run_cycle(MODEL, T0)
    assert len(vigil.store.rollback_times(MODEL)) == 1


def test_a_store_locked_past_its_timeout_after_the_alias_move_loses_nothing(tmp_path, monkeypatch):
    """Row 1's other half: a writer holds the SQLite store for longer than the 10 s busy
    timeout right after the alias moved, so recording the outcome fails."""
    vigil, reg = deployed(tmp_path)
    db = str(tmp_path / "vigil.db")
    held = threading.Event()

    def hold_the_store() -> None:
        while not reg.moves:
            time.sleep(0.01)
        con = sqlite3.connect(db, timeout=1, isolation_level=None)
        con.execute("BEGIN IMMEDIATE")
        held.set()
        time.sleep(11)
        con.execute("ROLLBACK")
        con.close()

    holder = threading.Thread(target=hold_the_store, daemon=True)
    holder.start()
    monkeypatch.setenv(ENV, "after_alias_move=sleep:0.5")  # let the holder take the lock first
    with pytest.raises(OperationalError, match="locked"):
        vigil.run_cycle(MODEL, T0)
    monkeypatch.delenv(ENV)
    assert held.is_set()
    holder.join(timeout=15)
    vigil.run_cycle(MODEL, T0 + 60)
    [action] = vigil.store.actions(model=MODEL)
    assert action.status == "done" and reg.moves == [(MODEL, "champion", "1")]
    assert [d.source for d in vigil.store.deploys(MODEL) if d.at >= T0] == ["rollback"]


def test_a_rollback_reaches_kserve_and_a_crash_between_the_layers_is_finished(tmp_path, monkeypatch):
    """Row 4: the alias alone is not the rollback; the InferenceService is moved too, and
    "done" is said only once both read back at v1."""
    from tests.fakes.kube_api import FakeKubeApi
    from tests.fakes.kube_objects import KSERVE, inference_service, kserve_status

    with FakeKubeApi() as kube:
        kube.put_object(inference_service(uri="models:/recommender/2"))
        serving = {"kind": "kserve", "namespace": "ml", "name": "recommender",
                   "storage_uri_template": "models:/{registry}/{version}", "api_url": kube.url}
        vigil, reg = deployed(tmp_path, models=[model_config(serving=serving)])
        monkeypatch.setenv(ENV, "after_serving_change=raise")
        with pytest.raises(FailPointError):
            vigil.run_cycle(MODEL, T0)
        monkeypatch.delenv(ENV)
        [action] = vigil.store.actions(model=MODEL)
        assert action.status == "pending"  # the alias moved and KServe was patched, but nothing verified it yet
        vigil.run_cycle(MODEL, T0 + 60)
        [action] = vigil.store.actions(model=MODEL)
        # The spec says v1, but KServe's controller has not rolled the new revision out: not done yet.
        assert action.status == "pending" and "not yet reconciled" in action.detail, action.detail
        # A rollout under way is neither a layer that "does not serve v1" nor one that is down.
        assert "does not serve" not in action.detail and "in effect" in action.detail, action.detail
        assert vigil.health.states["rollback:kserve"].status == "up", vigil.health.states["rollback:kserve"]
        kube.controller_status(*KSERVE, "recommender", kserve_status(traffic=[("latest", 100, True)]))
        vigil.run_cycle(MODEL, T0 + 120)
        [action] = vigil.store.actions(model=MODEL)
        assert action.status == "done" and "mlflow_alias + kserve" in action.detail, action.detail
        isvc = kube.get_object(*KSERVE, "recommender")
        assert isvc["spec"]["predictor"]["model"]["storageUri"] == "models:/recommender/1"
        assert reg.moves == [(MODEL, "champion", "1")] and len(kube.writes()) == 1


def test_a_serving_layer_still_rolling_out_is_no_retrying_note_for_an_incident_nobody_was_told_of(
        tmp_path, monkeypatch):
    """KServe's controller rolling out the revision Vigil set is how every such rollback goes,
    not a failed attempt: an incident muted since it opened got a "retrying" note each time."""
    from monitor.silence_ops import SilenceAsk, create
    from monitor.store.repository import IncidentRow
    from tests.fakes.kube_api import FakeKubeApi
    from tests.fakes.kube_objects import KSERVE, inference_service, kserve_status

    with FakeKubeApi() as kube:
        kube.put_object(inference_service(uri="models:/recommender/2"))
        serving = {"kind": "kserve", "namespace": "ml", "name": "recommender",
                   "storage_uri_template": "models:/{registry}/{version}", "api_url": kube.url}
        cfg = make_config(tmp_path, models=[model_config(serving=serving)],
                          policy={"slo_consecutive_cycles": 2, "resolve_after_cycles": 2})
        reg = serving_registry()
        vigil = make_vigil(cfg, registry=reg, prometheus=incident_prometheus(bad_from=BAD_FROM))
        create(vigil.store, SilenceAsk([f'model="{MODEL}"'], "retraining OPS-9", "olga", starts_at=T0 - 3600,
                                       ends_at=T0 + 86400), "olga", T0 - 3600)  # muted since it opened
        vigil.run_cycle(MODEL, T0 - 1200)
        reg.aliases[(MODEL, "champion")] = "2"
        for t in (T0 - 900, T0 - 600, T0 - 300, T0):
            vigil.run_cycle(MODEL, t)
        with vigil.store.tx() as s:
            assert [r.last_notified_at for r in s.query(IncidentRow).all()] == [None]
        [action] = vigil.store.actions(model=MODEL)
        assert action.status == "pending" and "in effect" in action.detail, action.detail
        assert [m.payload.get("status") for m in vigil.store.outbox_for_prefix(f"rollback:{MODEL}")] == []
        kube.controller_status(*KSERVE, "recommender", kserve_status(traffic=[("latest", 100, True)]))
        vigil.run_cycle(MODEL, T0 + 60)
        told = vigil.store.outbox_for_prefix(f"rollback:{MODEL}")
        [action] = vigil.store.actions(model=MODEL)
        assert action.status == "done", action.detail
        assert "done" in [m.payload.get("status") for m in told], [(m.key, m.payload) for m in told]


def test_a_second_alias_that_failed_to_move_is_moved_before_the_rollback_is_done(tmp_path):
    """`serving: {kind: mlflow_alias, alias: production}` is a layer of its own: the champion
    alias moving first must not count as the production alias having moved too."""
    vigil, reg = deployed(tmp_path, models=[model_config(serving={"kind": "mlflow_alias", "alias": "production"})])
    reg.aliases[(MODEL, "production")] = "2"
    set_alias = reg.set_alias

    def production_down(name: str, alias: str, version: str) -> None:
        if alias == "production":
            from monitor.sources.errors import SourceUnavailable
            raise SourceUnavailable("mlflow", "http://127.0.0.1:9", "MLflow answered 503")
        set_alias(name, alias, version)

    reg.set_alias = production_down
    vigil.run_cycle(MODEL, T0)
    [action] = vigil.store.actions(model=MODEL)
    assert action.status == "pending" and "MLflow answered 503" in action.detail, action.detail
    reg.set_alias = set_alias
    vigil.run_cycle(MODEL, T0 + 60)
    [action] = vigil.store.actions(model=MODEL)
    assert reg.aliases[(MODEL, "production")] == "1", (action.status, action.detail)
    assert action.status == "done"
    assert reg.moves == [(MODEL, "champion", "1"), (MODEL, "production", "1")]


def test_a_serving_layer_that_cannot_be_configured_fails_the_rollback_not_the_cycle(tmp_path):
    """A kubeconfig that is missing (a Secret not mounted) is found when the rollback needs
    the layer: the rollback is recorded as failed, saying why, and the cycle goes on."""
    serving = {"kind": "kserve", "namespace": "ml", "name": "recommender",
               "storage_uri_template": "models:/{registry}/{version}", "kubeconfig": str(tmp_path / "missing")}
    vigil, reg = deployed(tmp_path, models=[model_config(serving=serving)])
    report = vigil.run_cycle(MODEL, T0)  # critical, blamed on v2: a rollback is asked
    assert report.rollback is not None and report.rollback["status"] == "failed"
    [action] = vigil.store.actions(model=MODEL)
    assert action.status == "failed" and "cannot configure the Kubernetes client" in action.detail, action.detail
    assert reg.moves == []  # nothing moved: not even the alias, without a way to move serving after it
    audit = [e.action for e in vigil.store.audit_entries()]
    assert audit.count("rollback.requested") == 1 and audit.count("rollback.failed") == 1
    vigil.run_cycle(MODEL, T0 + 60)  # Vigil's own failure settles the incident's rollback: not asked again
    assert len(vigil.store.actions(model=MODEL)) == 1


def test_a_fresh_store_never_reuses_a_webhook_idempotency_key(tmp_path, monkeypatch):
    """Intent ids start at 1 in every store (a new SQLite file, a move to PostgreSQL, a
    staging Vigil beside production's): the Idempotency-Key must be new all the same, or a
    receiver that acts once per key replays an old answer and the rollback never happens."""
    from tests.fakes.webhook_receiver import WebhookReceiver

    monkeypatch.setenv("HOOK_SECRET", "s3cr3t-0123456789")
    with WebhookReceiver("s3cr3t-0123456789", serving="2") as hook:
        serving = {"kind": "webhook", "url": hook.url("/rollback"), "verify_url": hook.url("/serving"),
                   "secret_env": "HOOK_SECRET", "backoff_s": 0.01, "max_attempts": 1}
        for store, later in (("first", 0.0), ("second", 86400.0)):  # a new store the next day
            (tmp_path / store).mkdir()
            vigil, reg = deployed(tmp_path / store, models=[model_config(serving=serving)], later=later)
            hook.state.serving = "2"  # v2 deployed again since (the second store's story)
            vigil.run_cycle(MODEL, T0 + later)
            [action] = vigil.store.actions(model=MODEL)
            assert action.status == "done", (store, action.status, action.detail)
        assert [a["to_version"] for a in hook.actions] == ["1", "1"]
        keys = [d.headers.get("idempotency-key") for d in hook.deliveries if d.method == "POST"]
        assert len(set(keys)) == 2, keys


def test_a_person_rolls_back_serving_when_the_alias_was_already_moved_back_by_hand(tmp_path):
    """The MLflow alias moved back to v1 in the MLflow UI, KServe still serves v2: a rollback
    to v1 asked through the API moves KServe from v2, instead of failing with "serves v2,
    neither v1 nor v1"."""
    from tests.fakes.kube_api import FakeKubeApi
    from tests.fakes.kube_objects import KSERVE, inference_service, kserve_status

    with FakeKubeApi() as kube:
        kube.put_object(inference_service(uri="models:/recommender/2"))
        serving = {"kind": "kserve", "namespace": "ml", "name": "recommender",
                   "storage_uri_template": "models:/{registry}/{version}", "api_url": kube.url}
        cfg = make_config(tmp_path, models=[model_config(serving=serving)])
        reg = serving_registry(version="1")  # the alias: already back at v1
        vigil = make_vigil(cfg, registry=reg)
        kube.controller_status(*KSERVE, "recommender", kserve_status(traffic=[("latest", 100, True)]))
        m = vigil.config.model(MODEL)
        out = vigil.operator.rollback(RollbackAsk(m, "1", "alias moved by hand", "api:test", None, T0))
        isvc = kube.get_object(*KSERVE, "recommender")
        assert isvc["spec"]["predictor"]["model"]["storageUri"] == "models:/recommender/1", out.detail
        assert (out.from_version, out.to_version) == ("2", "1")
        assert reg.moves == []  # the alias was where it should be


def test_a_forced_dry_run_is_audited_as_forced(tmp_path):
    """A forced dry run (or no-op) was audited as `rollback.requested` with no trace of the
    force: the audit log could not tell an admin's override from an ordinary ask."""
    vigil, reg = deployed(tmp_path)
    m = vigil.config.model(MODEL)
    out = vigil.operator.rollback(RollbackAsk(m, "1", "check the override", "api:admin", None, T0, dry_run=True,
                                              forced=True))
    assert out.status == "dry_run" and reg.moves == []
    entries = [e for e in vigil.store.audit_entries() if e.action.startswith("rollback.")]
    assert [e.action for e in entries] == ["rollback.requested", "rollback.dry_run"]
    assert all(e.detail["forced"] is True for e in entries), [e.detail for e in entries]


@pytest.mark.parametrize("where", ["env", "file"])
def test_a_webhook_layer_whose_secret_cannot_be_read_fails_the_rollback_before_the_alias_moves(
        tmp_path, monkeypatch, where):
    """`secret_env` naming an unset variable (or `secret_file` a Secret not mounted) passed
    check-config; the first rollback moved the MLflow alias, then could not sign the webhook:
    a model half rolled back, its alias on v1 and serving on v2. Like a missing kubeconfig,
    it is now found before anything moves."""
    from tests.fakes.webhook_receiver import WebhookReceiver

    monkeypatch.delenv("HOOK_SECRET", raising=False)
    with WebhookReceiver("s3cr3t-0123456789", serving="2") as hook:
        secret = {"secret_env": "HOOK_SECRET"} if where == "env" else {"secret_file": str(tmp_path / "missing")}
        serving = {"kind": "webhook", "url": hook.url("/rollback"), "verify_url": hook.url("/serving"),
                   "backoff_s": 0.01, "max_attempts": 1, **secret}
        vigil, reg = deployed(tmp_path, models=[model_config(serving=serving)])
        report = vigil.run_cycle(MODEL, T0)  # critical, blamed on v2: a rollback is asked
        assert report.rollback is not None and report.rollback["status"] == "failed", report.rollback
        [action] = vigil.store.actions(model=MODEL)
        assert ("HOOK_SECRET" if where == "env" else "missing") in action.detail, action.detail
        assert reg.moves == [], "the alias moved though serving could not follow"
        assert hook.actions == []


def test_a_dry_run_to_the_version_already_serving_says_nothing_would_move(tmp_path):
    """`vigil rollback MODEL --dry-run` (or the API's dry_run) with the alias already on the
    target answered "dry run: would move mlflow_alias from v1 to v1" and announced that move
    in Slack, while the real rollback is a no-op ("'champion' already points at v1")."""
    cfg = make_config(tmp_path)
    reg = serving_registry(version="1")
    vigil = make_vigil(cfg, registry=reg)
    m = vigil.config.model(MODEL)
    out = vigil.operator.rollback(RollbackAsk(m, "1", "what would happen", "cli:sre", None, T0, dry_run=True))
    assert out.status == "noop", out.detail
    assert "would move" not in out.detail and "already points at v1" in out.detail, out.detail
    assert reg.moves == []
    [action] = vigil.store.actions(model=MODEL)
    assert action.dry_run is True and action.status == "noop"
    assert [r for r in vigil.store.outbox_for_prefix("dry-run:")] == []  # no "would move v1 to v1" announced


def _kserve_rolling_out(tmp_path: Path, kube: Any) -> tuple[Vigil, Any]:
    from tests.fakes.kube_objects import inference_service

    kube.put_object(inference_service(uri="models:/recommender/2"))
    serving = {"kind": "kserve", "namespace": "ml", "name": "recommender",
               "storage_uri_template": "models:/{registry}/{version}", "api_url": kube.url}
    cfg = make_config(tmp_path, models=[model_config(serving=serving)], schedule={
        "interval": "30s", "lookback": "30m", "baseline": "1h"},
        policy={"slo_consecutive_cycles": 2, "resolve_after_cycles": 2})
    reg = serving_registry()
    vigil = make_vigil(cfg, registry=reg, prometheus=incident_prometheus(bad_from=BAD_FROM))
    vigil.run_cycle(MODEL, T0 - 1200)
    reg.aliases[(MODEL, "champion")] = "2"
    for t in (T0 - 900, T0 - 600, T0 - 300, T0):
        vigil.run_cycle(MODEL, t)
    return vigil, reg


def _waited_out(vigil: Vigil, t: float) -> tuple[Any, float]:
    """Cycles every 30 s after `t` until the rollback is no longer pending (an hour past T0 at
    the most): its record then, and the time of the cycle that settled it."""
    while vigil.store.actions(model=MODEL)[0].status == "pending" and t < T0 + 3600:
        t += 30
        vigil.run_cycle(MODEL, t)
    [action] = vigil.store.actions(model=MODEL)
    return action, t


def test_a_slow_healthy_rollout_at_a_short_interval_is_waited_for_not_failed(tmp_path):
    """At a 30 s interval the ten attempts were five minutes: a KServe revision that takes six
    to become ready (image pull, model download) failed the rollback, telling on-call it gave
    up on a rollback that was landing."""
    from tests.fakes.kube_api import FakeKubeApi
    from tests.fakes.kube_objects import KSERVE, kserve_status

    with FakeKubeApi() as kube:
        vigil, _ = _kserve_rolling_out(tmp_path, kube)
        for i in range(1, 13):  # six more minutes of 30 s cycles, the revision not ready yet
            vigil.run_cycle(MODEL, T0 + 30 * i)
        [action] = vigil.store.actions(model=MODEL)
        assert action.status == "pending" and "waiting for it to take effect" in action.detail, action.detail
        kube.controller_status(*KSERVE, "recommender", kserve_status(traffic=[("latest", 100, True)]))
        vigil.run_cycle(MODEL, T0 + 390)
        [action] = vigil.store.actions(model=MODEL)
        assert action.status == "done", action.detail


def test_a_rollout_that_never_takes_effect_fails_after_fifteen_minutes(tmp_path):
    from tests.fakes.kube_api import FakeKubeApi

    with FakeKubeApi() as kube:
        vigil, _ = _kserve_rolling_out(tmp_path, kube)
        action, t = _waited_out(vigil, T0)
        assert action.status == "failed" and "min:" in action.detail and "not yet in effect" in action.detail
        assert 900 <= t - T0 <= 960, t - T0  # the intent was recorded at T0 - 300 or T0


def test_a_rollout_given_up_on_says_the_layer_was_set_not_that_it_is_still_on_the_old_version(tmp_path):
    """A rollback that gave up waiting for KServe's revision told on-call "still on v2: kserve
    (ask again to finish it, or move the moved ones back)" and its record's `moved` named the
    alias only, while KServe had been set to v1 and was rolling it out: moving the alias back
    by that advice left the model's registry on v2 and its serving on v1."""
    from tests.fakes.kube_api import FakeKubeApi

    with FakeKubeApi() as kube:
        vigil, _ = _kserve_rolling_out(tmp_path, kube)
        action, _ = _waited_out(vigil, T0)
        assert action.status == "failed", action.detail
        assert "still on v2: kserve" not in action.detail, action.detail
        assert "set to v1, not yet in effect: kserve" in action.detail, action.detail


def test_a_layer_unreachable_once_while_its_rollout_is_waited_for_is_still_waited_for(tmp_path):
    """Past the attempts a short interval gives, one unanswered read during the 15-minute wait
    failed the rollback the layer was still rolling out, half moved ("gave up after 13 attempts")."""
    from tests.fakes.kube_api import FakeKubeApi
    from tests.fakes.kube_objects import KSERVE, kserve_status

    with FakeKubeApi() as kube:
        vigil, _ = _kserve_rolling_out(tmp_path, kube)
        for i in range(1, 12):  # past ten attempts, the revision not ready yet
            vigil.run_cycle(MODEL, T0 + 30 * i)
        kube.fail(503, count=20)  # the API server does not answer for a cycle
        vigil.run_cycle(MODEL, T0 + 360)
        [action] = vigil.store.actions(model=MODEL)
        assert action.status == "pending", action.detail
        with kube.lock:
            kube.state.faults.clear()  # it answers again
        kube.controller_status(*KSERVE, "recommender", kserve_status(traffic=[("latest", 100, True)]))
        vigil.run_cycle(MODEL, T0 + 390)
        [action] = vigil.store.actions(model=MODEL)
        assert action.status == "done", action.detail


def test_the_fifteen_minute_wait_for_a_rollout_counts_from_when_the_layer_was_set(tmp_path):
    """The settle wait counted from the rollback's request: one that retried an unreachable API
    server for 8 minutes before it could set KServe had 7 left for the image pull, and was
    failed while landing. It counts from the attempt that set the layer."""
    from tests.fakes.kube_api import FakeKubeApi
    from tests.fakes.kube_objects import KSERVE, inference_service, kserve_status

    with FakeKubeApi() as kube:
        kube.put_object(inference_service(uri="models:/recommender/2"))
        serving = {"kind": "kserve", "namespace": "ml", "name": "recommender", "max_attempts": 1,
                   "storage_uri_template": "models:/{registry}/{version}", "api_url": kube.url}
        cfg = make_config(tmp_path, models=[model_config(serving=serving)],
                          policy={"slo_consecutive_cycles": 2, "resolve_after_cycles": 2})
        reg = serving_registry()
        vigil = make_vigil(cfg, registry=reg, prometheus=incident_prometheus(bad_from=BAD_FROM))
        vigil.run_cycle(MODEL, T0 - 1200)
        reg.aliases[(MODEL, "champion")] = "2"
        kube.fail(503, count=10**6)  # the API server does not answer
        t = T0 - 900
        while not _rollbacks(vigil) and t < T0 + 600:
            vigil.run_cycle(MODEL, t)
            t += 60
        [action] = _rollbacks(vigil)
        asked = action.at
        while t < asked + 8 * 60:  # eight minutes of an unreachable API server: the alias moved, KServe not
            vigil.run_cycle(MODEL, t)
            t += 60
        assert _rollbacks(vigil)[0].status == "pending"
        with kube.lock:
            kube.state.faults.clear()  # it answers: the layer is set now, its revision not ready
        set_at = t
        while t < set_at + 13 * 60:  # the image pull and model download take 13 minutes
            vigil.run_cycle(MODEL, t)
            [action] = _rollbacks(vigil)
            assert action.status == "pending", (t - set_at, action.detail)
            t += 60
        kube.controller_status(*KSERVE, "recommender", kserve_status(traffic=[("latest", 100, True)]))
        vigil.run_cycle(MODEL, t)
        [action] = _rollbacks(vigil)
        assert action.status == "done", action.detail


def _rollbacks(vigil: Vigil) -> list[Any]:
    """The model's rollbacks that were let through (not the guard's refusals)."""
    return [a for a in vigil.store.actions(model=MODEL) if a.status != "refused"]


def test_a_serving_layer_moved_elsewhere_during_its_rollout_is_not_said_to_be_set_to_the_target(tmp_path):
    """During the wait for KServe's revision someone pointed KServe at v5. The rollback failed
    saying both "kserve serves v5 ... somebody moved it since; left alone" and "set to v1, not
    yet in effect: kserve", and its record's `moved` named kserve: on-call was told v1 was
    landing where v5 serves."""
    from sqlalchemy import select

    from monitor.cycle.rollback_ask import moved_layers
    from monitor.store.intents import RollbackIntentRow
    from tests.fakes.kube_api import FakeKubeApi
    from tests.fakes.kube_objects import inference_service

    with FakeKubeApi() as kube:
        vigil, _ = _kserve_rolling_out(tmp_path, kube)
        for i in range(1, 4):  # KServe set to v1, its revision not ready yet
            vigil.run_cycle(MODEL, T0 + 30 * i)
        assert vigil.store.actions(model=MODEL)[0].status == "pending"
        kube.put_object(inference_service(uri="models:/recommender/5"))  # somebody moves it
        vigil.run_cycle(MODEL, T0 + 120)
        [action] = vigil.store.actions(model=MODEL)
        assert action.status == "failed" and "kserve serves v5" in action.detail, action.detail
        assert "not yet in effect" not in action.detail, action.detail
        with vigil.store.tx() as s:  # what the record's `moved` (webhook, PagerDuty) is made of
            [intent] = s.scalars(select(RollbackIntentRow)).all()
            assert moved_layers(intent) == ["mlflow_alias"]


def test_a_serving_layer_set_whose_first_read_gets_no_answer_is_waited_for_and_said_to_be_set(tmp_path):
    """KServe was set to v1, then the API server answered 503 to the read that followed: the
    rollback was judged by attempts (given up after ten, five minutes at a 30 s interval) and
    told on-call "still on v2: kserve" while KServe had been set to v1."""
    from tests.fakes.kube_api import FakeKubeApi, _Fault

    with FakeKubeApi() as kube:  # every request after the rollback's write to KServe gets a 503
        kube.interleave(lambda: kube.state.faults.append(_Fault(503, 10**6, None)))
        vigil, _ = _kserve_rolling_out(tmp_path, kube)
        assert [w.method for w in kube.writes()] == ["PATCH"]  # KServe was set
        for i in range(1, 13):  # six minutes, past the ten attempts
            vigil.run_cycle(MODEL, T0 + 30 * i)
        [action] = vigil.store.actions(model=MODEL)
        assert action.status == "pending", action.detail
        action, t = _waited_out(vigil, T0 + 360)
        assert action.status == "failed" and 900 <= t - T0 <= 960, (t - T0, action.detail)
        assert "still on v2: kserve" not in action.detail, action.detail
        assert "set to v1, not yet in effect: kserve" in action.detail, action.detail


def test_a_rollout_pending_across_the_upgrade_whose_next_read_gets_no_answer_is_said_to_be_set(tmp_path):
    """A rollback waiting for KServe's revision when Vigil was upgraded to migration 0010 has
    no `settling_since`; when its first attempt after the upgrade got a 503 it stayed unset,
    and the failure told on-call "still on v2: kserve" while KServe had been set to v1."""
    from sqlalchemy import select

    from monitor.store.intents import RollbackIntentRow
    from tests.fakes.kube_api import FakeKubeApi

    with FakeKubeApi() as kube:
        vigil, _ = _kserve_rolling_out(tmp_path, kube)
        vigil.run_cycle(MODEL, T0 + 30)  # KServe set to v1, its revision not ready yet
        with vigil.store.tx() as s:  # as the upgrade to 0010 leaves it
            [intent] = s.scalars(select(RollbackIntentRow)).all()
            intent.settling_since = None
        kube.fail(503, count=10**6)  # the API server does not answer from then on
        action, _ = _waited_out(vigil, T0 + 30)
        assert action.status == "failed", action.detail
        assert "still on v2: kserve" not in action.detail, action.detail
        assert "set to v1, not yet in effect: kserve" in action.detail, action.detail
