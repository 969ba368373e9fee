"""Receivers told of rollbacks (`events: [rollback]`): PagerDuty shows the automatic rollback
as a change event on the service beside the incident it paged, a change-management webhook
hears of it, signed and keyed once, and a receiver that did not ask hears nothing new.

Before, only Slack and Grafana heard of a rollback: on-call looking at the PagerDuty incident
saw no sign that Vigil had already moved production back."""
from __future__ import annotations

from typing import Any

import pytest

from monitor.config_errors import ConfigError
from monitor.sources.errors import SourceUnavailable
from tests.fakes.opsgenie_server import FakeOpsgenie
from tests.fakes.pagerduty_server import FakePagerDuty
from tests.fakes.webhook_receiver import WebhookReceiver as FakeHook
from tests.helpers_receivers import an_acked_warning, deliver_all
from tests.helpers_vigil import MODEL, T0, incident_prometheus, make_config, make_vigil, serving_registry

PD_KEY = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
HOOK_SECRET = "hook-secret-9a7c"
OG_KEY = "opsgenie-test-key-3f1e"
FAST = {"timeout_s": 5.0, "max_attempts": 3, "backoff_s": 0.0, "max_wait_s": 0.2}
CYCLES = (T0 - 900, T0 - 600, T0 - 300, T0, T0 + 60, T0 + 120, T0 + 180)


@pytest.fixture(autouse=True)
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PD_ROUTING_KEY", PD_KEY)
    monkeypatch.setenv("HOOK_SECRET", HOOK_SECRET)
    monkeypatch.setenv("OG_API_KEY", OG_KEY)


def hook_receiver(name: str, url: str, **over: Any) -> dict[str, Any]:
    return {"name": name, "kind": "webhook", "url": url, "secret_env": "HOOK_SECRET", **FAST, **over}


def run_deploy_and_regression(tmp_path, receivers: list[dict[str, Any]], *, fail_alias: bool = False) -> Any:
    registry = serving_registry()
    cfg = make_config(tmp_path, receivers=receivers,
                      policy={"slo_consecutive_cycles": 2, "resolve_after_cycles": 2, "rollback": {"max_attempts": 2}})
    vigil = make_vigil(cfg, prometheus=incident_prometheus(bad_from=T0 - 300), registry=registry)
    vigil.run_cycle(MODEL, T0 - 1200)
    registry.aliases[(MODEL, "champion")] = "2"  # someone deploys v2; the KPI falls after it
    if fail_alias:
        registry.fail_set_alias = "MLflow answered 503"
    for t in CYCLES:
        vigil.run_cycle(MODEL, t)
        deliver_all(vigil, t)
    return vigil


def test_the_automatic_rollback_is_a_change_event_on_the_paged_service_and_a_webhook_event(tmp_path):
    with FakePagerDuty() as pd, FakeHook(HOOK_SECRET) as changes, FakeHook(HOOK_SECRET) as pages:
        pd_cfg = {"name": "pd", "kind": "pagerduty", "routing_key_env": "PD_ROUTING_KEY", "url": pd.url,
                  "events": ["incident", "rollback"], **FAST}
        vigil = run_deploy_and_regression(tmp_path, [
            pd_cfg,
            hook_receiver("changes", changes.url("/alerts"), events=["rollback"]),  # a change log, never paged
            hook_receiver("pages", pages.url("/alerts")),  # incidents only, as before
        ])
        [action] = vigil.store.actions(model=MODEL)
        assert action.status == "done"
        vigil.deliver(T0 + 3600)  # nothing is sent twice on a later round

        [alert] = pd.alerts()
        [change] = pd.changes
        assert change["payload"]["summary"].startswith(f"Vigil rollback of {MODEL} v2 -> v1: done")
        details = change["payload"]["custom_details"]
        assert details["status"] == "done" and details["actor"] == "vigil"
        assert details["incident_dedup_key"] == alert.dedup_key  # tied to the page on-call is looking at

        assert [a["event"] for a in changes.alerts] == ["rollback"]  # no incident pages there
        [told] = changes.alerts
        assert (told["model"], told["from_version"], told["to_version"], told["status"]) == (MODEL, "2", "1", "done")
        assert told["incident_dedup_key"] is None  # that receiver was never paged for it
        assert told["idempotency_key"].startswith(f"rollback:{MODEL}:")
        assert "rollback" not in [a["event"] for a in pages.alerts] and pages.alerts  # paged, told nothing new


def test_a_rollback_that_gave_up_having_moved_nothing_is_no_change_on_pagerduty_but_the_webhook_hears_it(tmp_path):
    """A change event is PagerDuty's record of a change to production: a rollback that failed
    without moving anything showed on the service's recent changes as if production had moved."""
    with FakePagerDuty() as pd, FakeHook(HOOK_SECRET) as hook:
        pd_cfg = {"name": "pd", "kind": "pagerduty", "routing_key_env": "PD_ROUTING_KEY", "url": pd.url,
                  "events": ["rollback"], **FAST}
        vigil = run_deploy_and_regression(tmp_path, [pd_cfg, hook_receiver("changes", hook.url("/alerts"),
                                                                           events=["rollback"])], fail_alias=True)
        [action] = vigil.store.actions(model=MODEL)
        assert action.status == "failed"
        assert pd.alerts() == []  # told of rollbacks only: paged for nothing
        assert pd.changes == []
        failed = [a for a in hook.alerts if a["status"] == "failed"]
        assert len(failed) == 1 and failed[0]["moved"] == [], hook.alerts


def test_a_rollback_that_gave_up_half_moved_is_a_change_event_saying_failed(tmp_path):
    """The alias moved, the serving layer (a second alias here) could not be: production did change."""
    from tests.helpers_vigil import model_config

    with FakePagerDuty() as pd:
        pd_cfg = {"name": "pd", "kind": "pagerduty", "routing_key_env": "PD_ROUTING_KEY", "url": pd.url,
                  "events": ["rollback"], **FAST}
        registry = serving_registry()
        registry.aliases[(MODEL, "production")] = "2"
        cfg = make_config(tmp_path, receivers=[pd_cfg],
                          models=[model_config(serving={"kind": "mlflow_alias", "alias": "production"})],
                          policy={"slo_consecutive_cycles": 2, "resolve_after_cycles": 2,
                                  "rollback": {"max_attempts": 2}})
        vigil = make_vigil(cfg, prometheus=incident_prometheus(bad_from=T0 - 300), registry=registry)
        vigil.run_cycle(MODEL, T0 - 1200)
        registry.aliases[(MODEL, "champion")] = "2"
        set_alias = registry.set_alias

        def production_down(name: str, alias: str, version: str) -> None:
            if alias == "production":
                raise SourceUnavailable("mlflow", "http://127.0.0.1:9", "MLflow answered 503")
            set_alias(name, alias, version)

        registry.set_alias = production_down  # type: ignore[method-assign]
        for t in (*CYCLES, *(T0 + 180 + 60 * i for i in range(1, 12))):
            vigil.run_cycle(MODEL, t)
            vigil.deliver(t)
        assert [a.status for a in vigil.store.actions(model=MODEL) if a.status != "refused"] == ["failed"]
        [change] = pd.changes
        assert ": failed" in change["payload"]["summary"]
        assert change["payload"]["custom_details"]["moved"] == ["mlflow_alias"]


def test_an_unknown_event_is_named_with_what_is_expected(tmp_path):
    with pytest.raises(ConfigError) as e:
        make_config(tmp_path, receivers=[hook_receiver("changes", "http://127.0.0.1:9/alerts", events=["rollbacks"])])
    assert "receivers[0](changes).events[0]" in str(e.value) and "'incident', 'rollback' or 'deploy'" in str(e.value)


def test_a_dry_run_reaches_the_webhook_but_is_no_change_on_pagerduty(tmp_path):
    with FakePagerDuty() as pd, FakeHook(HOOK_SECRET) as hook:
        pd_cfg = {"name": "pd", "kind": "pagerduty", "routing_key_env": "PD_ROUTING_KEY", "url": pd.url,
                  "events": ["rollback"], **FAST}
        registry = serving_registry()
        cfg = make_config(tmp_path, receivers=[pd_cfg, hook_receiver("changes", hook.url("/alerts"),
                                                                     events=["rollback"])],
                          policy={"slo_consecutive_cycles": 2, "resolve_after_cycles": 2,
                                  "rollback": {"dry_run": True}})
        vigil = make_vigil(cfg, prometheus=incident_prometheus(bad_from=T0 - 300), registry=registry)
        vigil.run_cycle(MODEL, T0 - 1200)
        registry.aliases[(MODEL, "champion")] = "2"
        for t in CYCLES:
            vigil.run_cycle(MODEL, t)
            vigil.deliver(t)
        assert registry.aliases[(MODEL, "champion")] == "2"  # nothing moved
        assert [(a["event"], a["status"]) for a in hook.alerts] == [("rollback", "dry_run")]
        assert pd.changes == []


def test_the_rollback_is_a_note_on_the_opsgenie_alert_it_paged(tmp_path):
    with FakeOpsgenie(OG_KEY) as og:
        og_cfg = {"name": "og", "kind": "opsgenie", "api_key_env": "OG_API_KEY", "url": og.url,
                  "events": ["incident", "rollback"], **FAST}
        vigil = run_deploy_and_regression(tmp_path, [og_cfg])
        [action] = vigil.store.actions(model=MODEL)
        assert action.status == "done"
        [alert] = og.alerts()
        notes = [n for n in alert.notes if n.startswith("Vigil rollback")]
        assert len(notes) == 1 and f"of {MODEL} v2 -> v1: done" in notes[0], alert.notes


def test_the_deploy_and_its_rollback_are_two_changes_on_the_service_in_order(tmp_path):
    """`events: [deploy]`: the alias move the registry poll saw is a change event too, so the
    page's "recent changes" show the deploy that caused it and the rollback that undid it;
    Vigil's own move back is the rollback's change, never a second deploy."""
    with FakePagerDuty() as pd, FakeHook(HOOK_SECRET) as hook:
        pd_cfg = {"name": "pd", "kind": "pagerduty", "routing_key_env": "PD_ROUTING_KEY", "url": pd.url,
                  "events": ["incident", "rollback", "deploy"], **FAST}
        vigil = run_deploy_and_regression(tmp_path, [pd_cfg, hook_receiver("changes", hook.url("/alerts"),
                                                                           events=["deploy"])])
        assert [a.status for a in vigil.store.actions(model=MODEL)] == ["done"]
        summaries = [c["payload"]["summary"] for c in pd.changes]
        assert len(summaries) == 2, summaries
        assert summaries[0] == f"{MODEL} 'champion' -> v2 (was v1), seen in the model registry by Vigil"
        assert summaries[1].startswith(f"Vigil rollback of {MODEL} v2 -> v1: done")
        [deploy] = hook.alerts
        assert (deploy["event"], deploy["version"], deploy["previous_version"], deploy["source"]) == \
            ("deploy", "2", "1", "registry")


def test_opsgenie_takes_no_deploy_events(tmp_path):
    og_cfg = {"name": "og", "kind": "opsgenie", "api_key_env": "OG_API_KEY", "url": "http://127.0.0.1:9",
              "events": ["incident", "deploy"]}
    with pytest.raises(ConfigError) as e:
        make_config(tmp_path, receivers=[og_cfg])
    assert "receivers[0](og).events[1]" in str(e.value) and "'incident' or 'rollback'" in str(e.value)


def test_the_rollback_note_waits_for_the_opsgenie_alert_whose_create_was_throttled(tmp_path):
    """The page and the rollback are written in one cycle: with the create throttled (429) and
    retried, the note went first, Opsgenie accepted it (202) and then dropped it (no alert with
    that alias yet), and the alert on-call opened never said production had been rolled back."""
    with FakeOpsgenie(OG_KEY) as og:
        og.force(429, count=3, retry_after="0")  # the alert's create, each of its attempts in one delivery
        og_cfg = {"name": "og", "kind": "opsgenie", "api_key_env": "OG_API_KEY", "url": og.url,
                  "events": ["incident", "rollback"], **FAST}
        run_deploy_and_regression(tmp_path, [og_cfg])
        [alert] = og.alerts()
        notes = [n for n in alert.notes if n.startswith("Vigil rollback")]
        assert len(notes) == 1 and f"of {MODEL} v2 -> v1: done" in notes[0], alert.notes


def escalate_an_acked_warning_and_roll_back(tmp_path, receiver: dict[str, Any]) -> None:
    """The owner acks the warning; it turns critical, so the acked alert is closed and a new
    one pages (`<key>~2`), and a person rolls back before that is sent, then all is delivered."""
    from monitor.cycle.rollback_ask import RollbackAsk

    cfg, vigil, row = an_acked_warning(tmp_path, receiver)
    assert vigil.run_cycle(MODEL, T0 + 60).step == "update"  # critical: the ack lapsed
    outcome = vigil.operator.rollback(RollbackAsk(cfg.models[0], "1", "p99 breach", "api:sre", row.id, T0 + 61))
    assert outcome.status == "done", outcome
    deliver_all(vigil, T0 + 61)


def test_a_rollback_in_the_cycle_an_acked_warning_escalates_is_noted_on_the_new_opsgenie_alert(tmp_path):
    """The owner acked the warning; it turns critical, so the acked alert is closed and a new one
    pages (`<key>~2`), and a person rolls back before that is sent. The note named the alias
    read when it was written: it went on the closed alert, none on the one on-call opened."""
    with FakeOpsgenie(OG_KEY) as og:
        escalate_an_acked_warning_and_roll_back(tmp_path, {
            "name": "og", "kind": "opsgenie", "api_key_env": "OG_API_KEY", "url": og.url,
            "events": ["incident", "rollback"], **FAST})
        [paging] = [a for a in og.alerts() if a.status == "open"]
        assert paging.alias == "vigil-incident-1~2"
        assert any(n.startswith("Vigil rollback") for n in paging.notes), [(a.alias, a.notes) for a in og.alerts()]


def test_a_rollback_in_the_cycle_an_acked_warning_escalates_names_the_new_pagerduty_alert(tmp_path):
    """As for Opsgenie's note: the acked warning turns critical, PagerDuty's acked alert is
    resolved and a new one pages (`<key>~2`), and a person rolls back before that is sent. The
    change event named the key read when it was written, the alert already resolved."""
    with FakePagerDuty() as pd:
        escalate_an_acked_warning_and_roll_back(tmp_path, {
            "name": "pd", "kind": "pagerduty", "routing_key_env": "PD_ROUTING_KEY", "url": pd.url,
            "events": ["incident", "rollback"], **FAST})
        [paging] = [a for a in pd.alerts() if a.status == "triggered"]
        assert paging.dedup_key == "vigil-incident-1~2"
        [change] = pd.changes
        assert change["payload"]["custom_details"]["incident_dedup_key"] == paging.dedup_key
