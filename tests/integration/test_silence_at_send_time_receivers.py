"""Silences checked again when a receiver is sent its page (as for chat messages,
tests/integration/test_silence_at_send_time.py): a PagerDuty trigger or an Opsgenie create
that a cycle queued before a silence was made pages no one once the silence answered, and
pages once the silence ends; what would only close an alert nobody got is not sent either.
The incident's own silence (POST /v1/incidents/{id}/silence) counts as one."""
from __future__ import annotations

from typing import Any

import pytest

from alerts.outbox import OutboxStatus
from monitor import silence_ops
from monitor.silence_ops import SilenceAsk
from monitor.vigil import Vigil
from tests.fakes.opsgenie_server import FakeOpsgenie
from tests.fakes.pagerduty_server import FakePagerDuty
from tests.helpers_vigil import MODEL, T0, incident_prometheus, make_config, make_vigil

pytestmark = pytest.mark.integration
PD_KEY = "b1c2d3e4f5a60718293a4b5c6d7e8f91"
OG_KEY = "opsgenie-silence-key-7d2a"
FAST = {"timeout_s": 5.0, "max_attempts": 2, "backoff_s": 0.0, "max_wait_s": 0.2}


@pytest.fixture
def pd(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PD_ROUTING_KEY", PD_KEY)
    with FakePagerDuty() as fake:
        yield fake


@pytest.fixture
def og(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("OG_API_KEY", OG_KEY)
    with FakeOpsgenie(OG_KEY) as fake:
        yield fake


def pd_receiver(url: str) -> dict[str, Any]:
    return {"name": "pagerduty", "kind": "pagerduty", "routing_key_env": "PD_ROUTING_KEY", "url": url,
            "severities": ["warning", "critical"], **FAST}


def og_receiver(url: str) -> dict[str, Any]:
    return {"name": "opsgenie", "kind": "opsgenie", "api_key_env": "OG_API_KEY", "url": url, **FAST}


def vigil_with(tmp_path, *receivers: dict[str, Any], bad_until: float = float("inf")) -> Vigil:
    return make_vigil(make_config(tmp_path, receivers=list(receivers)),
                      prometheus=incident_prometheus(bad_until=bad_until))


def drain(vigil: Vigil, t: float) -> None:
    for _ in range(10):
        if vigil.deliver(t) == 0:
            break


def silence(vigil: Vigil, t: float) -> int:
    made = silence_ops.create(vigil.store, SilenceAsk([f'model="{MODEL}"'], "OPS-77", "olga", duration="1h"),
                              "api:olga", t)
    assert made.id is not None
    return made.id


def receiver_rows(vigil: Vigil, notifier: str) -> list[Any]:
    return [r for r in vigil.store.outbox_for_prefix("incident:1") if r.notifier == notifier]


def test_a_trigger_queued_before_the_silence_pages_no_one_and_pages_once_it_ends(tmp_path, pd, og):
    vigil = vigil_with(tmp_path, pd_receiver(pd.url), og_receiver(og.url))
    assert vigil.run_cycle(MODEL, T0).step == "open"  # the trigger is queued, not yet sent
    sid = silence(vigil, T0 + 5)  # answered: whoever silenced it expects no page
    drain(vigil, T0 + 10)
    assert pd.events == [], "PagerDuty was paged after the silence answered"
    assert og.alerts() == [], "Opsgenie was paged after the silence answered"
    for name in ("pagerduty", "opsgenie"):
        (row,) = receiver_rows(vigil, name)
        assert row.status == OutboxStatus.SUPPRESSED and f"silence {sid}" in (row.last_error or "")
    vigil.run_cycle(MODEL, T0 + 60)  # still silenced (and now critical): nothing
    drain(vigil, T0 + 60)
    assert pd.events == [] and og.alerts() == []
    silence_ops.expire(vigil.store, sid, "api:olga", T0 + 100)
    vigil.run_cycle(MODEL, T0 + 120)  # the silence ended: what is still wrong pages
    drain(vigil, T0 + 120)
    [alert] = pd.alerts()
    assert (alert.status, alert.severity) == ("triggered", "critical"), "PagerDuty never paged once it ended"
    assert [a.status for a in og.alerts()] == ["open"], "Opsgenie never paged once it ended"


def test_the_incidents_own_silence_holds_the_trigger_queued_before_it(tmp_path, pd):
    vigil = vigil_with(tmp_path, pd_receiver(pd.url))
    assert vigil.run_cycle(MODEL, T0).step == "open"
    vigil.operator.silence(1, "api:olga", 3600.0, "known, OPS-78", T0 + 5)
    drain(vigil, T0 + 10)
    assert pd.events == [], "the incident's own silence let its queued trigger page"
    (row,) = receiver_rows(vigil, "pagerduty")
    assert row.status == OutboxStatus.SUPPRESSED and "silenced until" in (row.last_error or "")
    vigil.run_cycle(MODEL, T0 + 3660)  # its silence ended: what is still wrong pages
    drain(vigil, T0 + 3660)
    assert [a.status for a in pd.alerts()] == ["triggered"], "PagerDuty never paged once the silence ended"


def test_a_held_trigger_and_the_resolve_queued_behind_it_reach_no_receiver(tmp_path, pd, og):
    """The sender was behind (a receiver outage, a stopped daemon) while the incident opened,
    was silenced and resolved: it must neither page for it nor close an alert nobody got."""
    vigil = vigil_with(tmp_path, pd_receiver(pd.url), og_receiver(og.url), bad_until=T0 + 30)
    assert vigil.run_cycle(MODEL, T0).step == "open"  # queued, not sent
    sid = silence(vigil, T0 + 5)
    steps = [vigil.run_cycle(MODEL, t).step for t in (T0 + 60, T0 + 720, T0 + 780, T0 + 840)]
    assert "resolve" in steps
    drain(vigil, T0 + 900)
    assert pd.events == [], f"PagerDuty got {[e['event_action'] for e in pd.events]} for a silenced incident"
    assert og.alerts() == [] and og.calls == [], "Opsgenie was called for a silenced incident"
    for name in ("pagerduty", "opsgenie"):
        rows = receiver_rows(vigil, name)
        assert len(rows) >= 2 and {r.status for r in rows} == {OutboxStatus.SUPPRESSED}
        assert f"silence {sid}" in (rows[0].last_error or "")


def test_a_shared_cause_page_queued_before_its_silence_pages_no_one_and_pages_once_it_ends(tmp_path, pd):
    """Two models on one saturated GPU page PagerDuty once, as their shared cause (key
    `group:<id>`); a silence of the shared cause made after that page was queued holds it."""
    from tests.integration.test_shared_cause import config, prometheus, registry

    vigil = make_vigil(config(tmp_path, receivers=[pd_receiver(pd.url)]), prometheus=prometheus(),
                       registry=registry())
    for t in (T0, T0 + 60):  # the group waits group_wait, then queues its page
        for m in ("recommender", "ranker"):
            vigil.run_cycle(m, t)
        if t == T0:
            drain(vigil, t)
    assert [r.status for r in vigil.store.outbox_for_prefix("group:1") if r.notifier == "pagerduty"] == ["pending"]
    made = silence_ops.create(vigil.store, SilenceAsk(['alertname="SharedCause"', 'cause_kind="gpu_saturation"'],
                                                      "GPU node swap OPS-12", "olga", duration="1h"), "api:olga",
                              T0 + 65)
    drain(vigil, T0 + 70)
    assert pd.events == [], "the shared cause paged PagerDuty after its silence answered"
    (row,) = [r for r in vigil.store.outbox_for_prefix("group:1") if r.notifier == "pagerduty"]
    assert row.status == OutboxStatus.SUPPRESSED and f"silence {made.id}" in (row.last_error or "")
    assert made.id is not None
    silence_ops.expire(vigil.store, made.id, "api:olga", T0 + 100)
    for t in (T0 + 120, T0 + 180):
        for m in ("recommender", "ranker"):
            vigil.run_cycle(m, t)
        drain(vigil, t)
    assert [(a.dedup_key, a.status) for a in pd.alerts()] == [("vigil-group-1", "triggered")], \
        "the shared cause never paged once its silence ended"


def test_an_escalation_queued_before_the_silence_reaches_pagerduty_once_it_ends(tmp_path, pd):
    vigil = vigil_with(tmp_path, pd_receiver(pd.url))
    vigil.run_cycle(MODEL, T0)  # a warning: PagerDuty is paged at warning
    drain(vigil, T0)
    vigil.run_cycle(MODEL, T0 + 60)  # critical: the escalation is queued, not yet sent
    sid = silence(vigil, T0 + 65)
    drain(vigil, T0 + 70)
    [alert] = pd.alerts()
    assert [e["payload"]["severity"] for e in alert.log] == ["warning"], \
        "the escalation reached PagerDuty after the silence answered"
    assert receiver_rows(vigil, "pagerduty")[-1].status == OutboxStatus.SUPPRESSED
    silence_ops.expire(vigil.store, sid, "api:olga", T0 + 100)
    vigil.run_cycle(MODEL, T0 + 120)  # the silence ended: the escalation is told
    drain(vigil, T0 + 120)
    [alert] = pd.alerts()
    assert alert.log[-1]["payload"]["severity"] == "critical", "PagerDuty never heard of the escalation"
