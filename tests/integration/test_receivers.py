"""Incidents from real cycles paged to PagerDuty and Opsgenie (local servers that follow
their documented contracts) and to a signed webhook, through the outbox.

What an on-call person would see: one PD alert and one Opsgenie alert per incident,
opened at the severity each receiver takes, acknowledged when someone acks in Vigil,
resolved when Vigil resolves; nothing lost to an outage or a rate limit; nothing doubled
by a retry or a second sender; a misconfigured key named, never shown.
"""
from __future__ import annotations

import logging
from typing import Any

import pytest

from alerts.outbox import OutboxMessage
from monitor.store.repository import OutboxRow
from monitor.vigil import Vigil
from tests.fakes.opsgenie_server import FakeOpsgenie
from tests.fakes.pagerduty_server import FakePagerDuty
from tests.fakes.webhook_receiver import WebhookReceiver as FakeHook
from tests.helpers_vigil import MODEL, T0, incident_prometheus, make_config, make_vigil

PD_KEY = "a1b2c3d4e5f60718293a4b5c6d7e8f90"  # 32 characters, like an integration key
OG_KEY = "opsgenie-test-key-3f1e"
HOOK_SECRET = "hook-secret-9a7c"
FAST = {"timeout_s": 5.0, "max_attempts": 3, "backoff_s": 0.0, "max_wait_s": 0.2}


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PD_ROUTING_KEY", PD_KEY)
    monkeypatch.setenv("OG_API_KEY", OG_KEY)
    monkeypatch.setenv("HOOK_SECRET", HOOK_SECRET)


@pytest.fixture
def pd():
    with FakePagerDuty() as fake:
        yield fake


@pytest.fixture
def og():
    with FakeOpsgenie(OG_KEY) as fake:
        yield fake


def pd_receiver(url: str, **over: Any) -> dict[str, Any]:
    return {"name": "pagerduty", "kind": "pagerduty", "routing_key_env": "PD_ROUTING_KEY", "url": url,
            "severities": ["critical"], **FAST, **over}


def og_receiver(url: str, **over: Any) -> dict[str, Any]:
    return {"name": "opsgenie", "kind": "opsgenie", "api_key_env": "OG_API_KEY", "url": url, **FAST, **over}


def vigil_with(tmp_path, *receivers: dict[str, Any], bad_until: float = T0 + 120) -> Vigil:
    cfg = make_config(tmp_path, receivers=list(receivers))
    return make_vigil(cfg, prometheus=incident_prometheus(bad_until=bad_until))


def drain(vigil: Vigil, now: float) -> None:
    for _ in range(10):
        if vigil.deliver(now) == 0:
            break


def rows(vigil: Vigil, notifier: str) -> list[OutboxRow]:
    return [r for r in vigil.store.outbox_for_prefix("incident:1") if r.notifier == notifier]


def run(vigil: Vigil, *times: float) -> None:
    for t in times:
        vigil.run_cycle(MODEL, t)
        drain(vigil, t)


# ----------------------------------------------------------------------------- the whole story
def test_one_page_per_incident_escalated_acknowledged_and_resolved(tmp_path, keys, pd, og, caplog):
    caplog.set_level(logging.DEBUG)
    vigil = vigil_with(tmp_path, pd_receiver(pd.url), og_receiver(og.url))

    run(vigil, T0)  # CTR -10 %: a warning
    assert pd.events == [], "PagerDuty takes critical only: a warning does not page"
    [og_alert] = og.alerts()
    assert (og_alert.priority, og_alert.alias, og_alert.status) == ("P3", "vigil-incident-1", "open")

    run(vigil, T0 + 60)  # the p99 SLO breached twice: critical
    [pd_alert] = pd.alerts()
    assert (pd_alert.status, pd_alert.severity, pd_alert.dedup_key) == ("triggered", "critical", "vigil-incident-1")
    assert "recommender" in pd_alert.summary
    trigger = pd_alert.log[0]
    assert trigger["payload"]["custom_details"]["findings"], "the page says what Vigil saw"
    assert og.alerts()[0].count == 2, "the escalation updates the same Opsgenie alert (alias dedup)"

    vigil.operator.acknowledge(1, "alice", T0 + 90)
    drain(vigil, T0 + 90)
    assert pd.alerts()[0].status == "acknowledged"
    assert og.alerts()[0].acknowledged and og.alerts()[0].notes == ["Acknowledged in Vigil by alice"]

    run(vigil, T0 + 720, T0 + 780)  # back to normal for two cycles: resolved
    [pd_alert] = pd.alerts()
    assert pd_alert.status == "resolved"
    assert [e["event_action"] for e in pd_alert.log] == ["trigger", "acknowledge", "resolve"]
    assert {e["dedup_key"] for e in pd.events} == {"vigil-incident-1"}
    [og_alert] = og.alerts()
    assert (og_alert.status, og_alert.acknowledged) == ("closed", True)
    assert all(s["isSuccess"] for s in og.requests_status.values()), "every Opsgenie request was processed"
    assert [r.status for r in rows(vigil, "pagerduty")] == ["delivered"] * 3
    assert [r.status for r in rows(vigil, "opsgenie")] == ["delivered"] * 4
    assert PD_KEY not in caplog.text and OG_KEY not in caplog.text, "keys are never logged"


def test_a_receiver_limited_to_other_models_gets_nothing(tmp_path, keys, pd):
    cfg = make_config(tmp_path, models=[{"name": MODEL, "owner_channel": "#a", "kpis": [
        {"name": "ctr", "query": 'sum(rate(clicks_total{model="recommender"}[5m])) / '
                                 'sum(rate(impressions_total{model="recommender"}[5m]))'}]}, {"name": "ranker"}],
                      receivers=[pd_receiver(pd.url, severities=["warning", "critical"], models=["ranker"])])
    vigil = make_vigil(cfg, prometheus=incident_prometheus())
    run(vigil, T0)
    assert vigil.store.outbox_for_prefix("incident:1"), "the incident was opened and sent elsewhere"
    assert pd.events == [] and rows(vigil, "pagerduty") == []


# ----------------------------------------------------------------------------- exactly once
def test_a_retried_or_repeated_delivery_never_opens_a_second_page(tmp_path, keys, pd, og):
    """A sender that died after PagerDuty took the event, a lost answer, a second replica:
    the same record is delivered again, and PagerDuty and Opsgenie fold it into one alert."""
    vigil = vigil_with(tmp_path, pd_receiver(pd.url, severities=["warning", "critical"]), og_receiver(og.url))
    run(vigil, T0)
    [row] = rows(vigil, "pagerduty")
    again = OutboxMessage(id=row.id, notifier=row.notifier, kind=row.kind, key=row.key, payload=row.payload)
    for name in ("pagerduty", "opsgenie"):
        for _ in range(2):  # the same message, sent twice more (no ref: as a fresh sender would)
            assert vigil.notifiers[name].deliver(again).status == "delivered"
    assert len(pd.alerts()) == 1 and len(pd.events) == 3
    assert len(og.alerts()) == 1 and og.alerts()[0].count == 3


def test_a_sender_that_dies_after_the_call_leaves_one_page(tmp_path, monkeypatch, keys, pd, og):
    """Crash between PagerDuty's 202 and the outbox row's mark: the row's claim lapses, a
    later round takes it as uncertain and sends it again, and PagerDuty dedups it."""
    from monitor.failpoints import ENV, FailPointError, reset

    vigil = vigil_with(tmp_path, pd_receiver(pd.url, severities=["warning", "critical"]))
    vigil.run_cycle(MODEL, T0)
    monkeypatch.setenv(ENV, "after_notifier_call=raise@2")  # rows go out by id: the sink's, then PagerDuty's
    reset()
    with pytest.raises(FailPointError):
        vigil.deliver(T0)
    monkeypatch.delenv(ENV)
    assert pd.events and [r.status for r in rows(vigil, "pagerduty")] == ["sending"], \
        "PagerDuty took the event; the row the sender died on is still claimed"
    drain(vigil, T0 + 60)
    assert [r.status for r in rows(vigil, "pagerduty")] == ["sending"], "its claim holds until it lapses"
    drain(vigil, T0 + 3600)
    assert [r.status for r in rows(vigil, "pagerduty")] == ["delivered"]
    assert len(pd.alerts()) == 1, "sent again after the crash, folded into the same PD alert"
    assert len(pd.events) == 2


# ----------------------------------------------------------------------------- failures
def test_pagerduty_outage_keeps_the_page_and_delivers_it_when_back(tmp_path, keys, pd, og):
    vigil = vigil_with(tmp_path, pd_receiver(pd.url, severities=["warning", "critical"]), og_receiver(og.url))
    pd.force(503, count=3)  # the whole of one delivery's attempts
    run(vigil, T0)
    [row] = rows(vigil, "pagerduty")
    assert (row.status, row.attempts) == ("pending", 1) and "HTTP 503" in row.last_error
    assert pd.requests == 3, "retried in place before giving the row back to the outbox"
    assert len(og.alerts()) == 1, "a dead receiver does not hold back the others"
    drain(vigil, T0 + 3600)
    assert [r.status for r in rows(vigil, "pagerduty")] == ["delivered"]
    assert len(pd.alerts()) == 1


def test_unreachable_receiver_never_loses_an_alert_nor_blocks_the_others(tmp_path, keys, og):
    with FakePagerDuty() as gone:
        dead_url = gone.url  # a port nothing listens on once the server stops
    vigil = vigil_with(tmp_path, pd_receiver(dead_url, severities=["warning", "critical"]), og_receiver(og.url))
    run(vigil, T0, T0 + 60)
    assert [r.status for r in rows(vigil, "pagerduty")] == ["pending", "pending"]
    assert "cannot connect" in rows(vigil, "pagerduty")[0].last_error
    assert [r.status for r in rows(vigil, "opsgenie")] == ["delivered", "delivered"]
    assert [r.status for r in vigil.store.outbox_for_prefix("incident:1") if r.notifier == "sink"] == \
        ["delivered"] * 4, "chat (here the sink) goes on too: open, escalation, its threaded reply, on-call"


def test_pagerduty_rate_limit_is_waited_out_with_its_retry_after(tmp_path, keys, pd):
    vigil = vigil_with(tmp_path, pd_receiver(pd.url, severities=["warning", "critical"], max_attempts=2))
    pd.force(429, count=1, retry_after="0")
    run(vigil, T0)
    assert [r.status for r in rows(vigil, "pagerduty")] == ["delivered"], "one 429, retried in place"
    pd.force(429, count=1, retry_after="120")
    before = pd.requests
    run(vigil, T0 + 60)
    assert pd.requests == before + 1, "retried after max_wait_s, long before the 120 s PagerDuty asked for"
    row = rows(vigil, "pagerduty")[-1]
    assert row.status == "pending" and "HTTP 429" in row.last_error
    assert row.next_attempt_at == pytest.approx(T0 + 60 + 120), "the outbox waits PagerDuty's Retry-After"
    drain(vigil, T0 + 200)
    assert [r.status for r in rows(vigil, "pagerduty")] == ["delivered", "delivered"]
    assert len(pd.alerts()) == 1 and pd.alerts()[0].log[-1]["payload"]["severity"] == "critical"


def test_pagerduty_400_fails_the_message_with_pagerdutys_own_words(tmp_path, monkeypatch, keys, pd, caplog):
    monkeypatch.setenv("PD_ROUTING_KEY", "too-short-key")
    vigil = vigil_with(tmp_path, pd_receiver(pd.url, severities=["warning", "critical"]))
    run(vigil, T0)
    [row] = rows(vigil, "pagerduty")
    assert row.status == "failed", "a rejected event is not retried forever"
    assert "HTTP 400" in row.last_error and "invalid event" in row.last_error
    assert "Length of 'routing_key' is incorrect (should be 32 characters)" in row.last_error
    assert "too-short-key" not in row.last_error and "too-short-key" not in caplog.text
    assert pd.requests == 1


def test_missing_routing_key_is_named_and_the_page_waits_for_it(tmp_path, monkeypatch, keys, pd):
    monkeypatch.delenv("PD_ROUTING_KEY")
    vigil = vigil_with(tmp_path, pd_receiver(pd.url, severities=["warning", "critical"]))
    run(vigil, T0)
    [row] = rows(vigil, "pagerduty")
    assert row.status == "pending" and "environment variable PD_ROUTING_KEY is not set" in row.last_error
    assert pd.requests == 0
    monkeypatch.setenv("PD_ROUTING_KEY", PD_KEY)  # the secret is fixed: the page goes out
    drain(vigil, T0 + 3600)
    assert [r.status for r in rows(vigil, "pagerduty")] == ["delivered"] and len(pd.alerts()) == 1


def test_routing_key_from_a_file_is_read_on_each_call(tmp_path, pd):
    key_file = tmp_path / "pd-key"
    key_file.write_text(PD_KEY + "\n")
    receiver = pd_receiver(pd.url, severities=["warning", "critical"], routing_key_file="pd-key")
    del receiver["routing_key_env"]
    vigil = vigil_with(tmp_path, receiver)
    run(vigil, T0)
    rotated = "f" * 32
    key_file.write_text(rotated)  # the mounted secret was rotated: no restart needed
    run(vigil, T0 + 60)
    assert [e["routing_key"] for e in pd.events] == [PD_KEY, rotated]


def test_opsgenie_wrong_key_and_rate_limit(tmp_path, monkeypatch, keys, og):
    vigil = vigil_with(tmp_path, og_receiver(og.url))
    og.force(429, count=1)
    run(vigil, T0)
    assert [r.status for r in rows(vigil, "opsgenie")] == ["delivered"], "429 retried in place"
    monkeypatch.setenv("OG_API_KEY", "revoked-key")
    run(vigil, T0 + 60)
    row = rows(vigil, "opsgenie")[-1]
    assert row.status == "failed" and "HTTP 403" in row.last_error
    assert "You are not authorized for this operation" in row.last_error and "revoked-key" not in row.last_error


# ----------------------------------------------------------------------------- webhook
def test_signed_webhook_gets_each_change_once_whatever_the_retries(tmp_path, keys):
    with FakeHook(HOOK_SECRET) as hook:
        receiver = {"name": "hook", "kind": "webhook", "url": hook.url("/alerts"), "secret_env": "HOOK_SECRET",
                    **FAST}
        vigil = vigil_with(tmp_path, receiver)
        hook.fail(503, count=1)
        run(vigil, T0, T0 + 60)
        vigil.operator.acknowledge(1, "bob", T0 + 90)
        drain(vigil, T0 + 90)
        run(vigil, T0 + 720, T0 + 780)
        assert [a["event"] for a in hook.alerts] == ["triggered", "triggered", "acknowledged", "resolved"]
        assert [a["severity"] for a in hook.alerts][:2] == ["warning", "critical"]
        first = hook.deliveries[0]
        assert first.status == 503 and hook.deliveries[1].headers["idempotency-key"] == \
            first.headers["idempotency-key"], "a retry carries the same idempotency key"
        # A sender that died before recording the outcome sends the same row again: a replay.
        [row, *_] = rows(vigil, "hook")
        again = OutboxMessage(id=row.id, notifier=row.notifier, kind=row.kind, key=row.key, payload=row.payload)
        assert vigil.notifiers["hook"].deliver(again).status == "delivered"
        assert hook.deliveries[-1].replayed and len(hook.alerts) == 4
        assert all(d.status in (200, 503) for d in hook.deliveries), "every request was correctly signed"


def test_an_escalation_raises_the_opsgenie_alerts_priority(tmp_path, keys, og):
    """Opsgenie folds a create on an open alias into the alert and keeps its fields: the
    escalation reaches P1 policies through the priority call."""
    vigil = vigil_with(tmp_path, og_receiver(og.url))
    run(vigil, T0)  # warning
    [a] = og.alerts()
    assert a.priority == "P3"
    run(vigil, T0 + 60)  # critical
    assert vigil.store.incidents()[0].severity == "critical"
    [a] = og.alerts()
    assert a.priority == "P1"
    assert [(m, p) for m, p, _ in og.calls][-1] == ("PUT", f"/v2/alerts/{a.alias}/priority")


def test_an_ack_under_a_silence_pages_no_receiver_that_never_had_the_incident(tmp_path, keys, pd):
    """PagerDuty takes criticals. The incident, a warning when told, turns critical under a
    silence and is acknowledged while the silence lasts: the ack must not be the page the
    silence holds back."""
    from monitor.silence_ops import SilenceAsk, create

    vigil = vigil_with(tmp_path, pd_receiver(pd.url), bad_until=T0 + 3600)
    create(vigil.store, SilenceAsk(['model="recommender"'], "retraining OPS-9", "olga", starts_at=T0 + 30,
                                   duration="2h"), "olga", T0 - 10)
    run(vigil, T0, T0 + 60)  # a warning (PagerDuty does not take it), then critical under the silence
    assert vigil.store.incidents()[0].severity == "critical" and pd.events == []
    vigil.operator.acknowledge(vigil.store.incidents()[0].id, "api:olga", T0 + 90)
    drain(vigil, T0 + 90)
    assert pd.events == [] and rows(vigil, "pagerduty") == [], "the ack paged PagerDuty through the silence"


def test_a_rollback_under_a_silence_pages_no_receiver_that_never_had_the_incident(tmp_path, keys, pd):
    """The incident turns critical under a silence, and on-call rolls the model back while
    the silence lasts: the rollback's update of the incident must not be the page the
    silence holds back (nor post the incident in Slack, where nobody was told of it)."""
    from monitor.cycle.rollback_ask import RollbackAsk
    from monitor.silence_ops import SilenceAsk, create

    vigil = vigil_with(tmp_path, pd_receiver(pd.url), bad_until=T0 + 3600)
    create(vigil.store, SilenceAsk(['model="recommender"'], "retraining OPS-9", "olga", starts_at=T0 - 30,
                                   duration="2h"), "olga", T0 - 40)
    run(vigil, T0, T0 + 60)
    [incident] = vigil.store.incidents()
    assert incident.severity == "critical" and incident.last_notified_at is None and pd.events == []
    vigil.registry.aliases[(MODEL, "champion")] = "2"  # v2 went out; on-call takes it back
    outcome = vigil.operator.rollback(RollbackAsk(vigil.config.model(MODEL), "1", "bad v2", "api:olga",
                                                  incident.id, T0 + 90))
    assert outcome.status == "done", outcome
    drain(vigil, T0 + 90)
    assert pd.events == [] and rows(vigil, "pagerduty") == [], "the rollback paged PagerDuty through the silence"
    assert [r.key for r in vigil.store.outbox_for_prefix(f"incident:{incident.id}")] == [], \
        "the rollback posted an incident nobody was told of"


def test_an_ack_under_a_silence_tells_the_receiver_the_severity_it_had_not_the_held_escalation(tmp_path, keys, pd):
    """PagerDuty took the warning; the incident turns critical under a silence and is
    acknowledged while it lasts. The ack's update must say warning, as PagerDuty was told:
    sending critical with it would be the escalation the silence holds back."""
    from monitor.silence_ops import SilenceAsk, create

    vigil = vigil_with(tmp_path, pd_receiver(pd.url, severities=["warning", "critical"]), bad_until=T0 + 3600)
    create(vigil.store, SilenceAsk(['model="recommender"'], "retraining OPS-9", "olga", starts_at=T0 + 30,
                                   duration="2h"), "olga", T0 - 10)
    run(vigil, T0, T0 + 60)  # the warning pages; the critical comes under the silence
    [alert] = pd.alerts()
    assert vigil.store.incidents()[0].severity == "critical" and alert.log[-1]["payload"]["severity"] == "warning"
    vigil.operator.acknowledge(vigil.store.incidents()[0].id, "api:olga", T0 + 90)
    drain(vigil, T0 + 90)
    [alert] = pd.alerts()
    severities = [e["payload"]["severity"] for e in alert.log if "payload" in e]
    assert "critical" not in severities, f"the ack told PagerDuty of the held escalation: {alert.log}"
    chat = [r for r in vigil.store.outbox_for_prefix("incident:1") if r.notifier not in ("pagerduty",)]
    assert chat and chat[-1].created_at == T0 + 90, "the ack shows in the channel's message"
    assert chat[-1].payload["severity"] == "warning", "the channel's message turned CRITICAL under the silence"
