"""A rollback's PagerDuty change event (or Opsgenie note) is queued under its incident's key, so
it goes after the page it tells of and names the alert that page left. It only informs: one
refused for a long time (429 on PagerDuty's change endpoint, Opsgenie's notes) must not hold
back the escalation behind it, the page that wakes on-call.

Before, the outbox sent one row per key at a time, in order: the page waited behind the
change event's retries, and in each delivery call the change event, older, came first and
its 429 rested the whole receiver for the call."""
from __future__ import annotations

import time
from typing import Any

import pytest

from monitor.cycle.rollback_ask import RollbackAsk
from tests.fakes.opsgenie_server import FakeOpsgenie
from tests.fakes.pagerduty_server import FakePagerDuty
from tests.helpers_receivers import an_acked_warning, deliver_all
from tests.helpers_vigil import MODEL, T0, make_config, make_vigil

PD_KEY = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
OG_KEY = "opsgenie-test-key-3f1e"
FAST = {"timeout_s": 5.0, "max_attempts": 3, "backoff_s": 0.0, "max_wait_s": 0.2}


@pytest.fixture(autouse=True)
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PD_ROUTING_KEY", PD_KEY)
    monkeypatch.setenv("OG_API_KEY", OG_KEY)


def roll_back_then_escalate(tmp_path, receiver: dict[str, Any], refuse: Any) -> tuple[Any, float]:
    """The owner acks the warning and rolls back; the receiver refuses the rollback's message
    (`refuse()`); the warning turns critical (the ack lapsed: a new alert, `<key>~2`). Returns
    the daemon and how long the one delivery call after the escalation took."""
    cfg, vigil, row = an_acked_warning(tmp_path, receiver)
    refuse()
    outcome = vigil.operator.rollback(RollbackAsk(cfg.models[0], "1", "p99 breach", "api:sre", row.id, T0 + 31))
    assert outcome.status == "done", outcome
    deliver_all(vigil, T0 + 31)  # the rollback's message is refused: retried later
    assert vigil.run_cycle(MODEL, T0 + 60).step == "update"  # critical: the ack lapsed
    started = time.monotonic()
    vigil.deliver(T0 + 60)  # one call: the rollback's message is due again, and refused again
    return vigil, time.monotonic() - started


def test_a_change_event_refused_for_long_never_holds_back_the_escalation_page(tmp_path):
    with FakePagerDuty() as pd:
        vigil, took = roll_back_then_escalate(tmp_path, {
            "name": "pd", "kind": "pagerduty", "routing_key_env": "PD_ROUTING_KEY", "url": pd.url,
            "events": ["incident", "rollback"], **FAST},
            lambda: pd.force(429, count=10_000, retry_after="1", path="/v2/change/enqueue"))
        [paging] = [a for a in pd.alerts() if a.status == "triggered"]
        assert paging.dedup_key == "vigil-incident-1~2" and paging.severity == "critical"
        assert took < 5.0, took
        assert pd.changes == []  # still refused
        for k in range(3):  # an hour of refusals: the page's key keeps its ref all along
            deliver_all(vigil, T0 + 600 + 1200 * k)
        assert pd.changes == []
        assert vigil.store.outbox.refs("pd")["incident:1"]["dedup_key"] == "vigil-incident-1~2"

        pd.clear_faults()  # PagerDuty takes change events again
        deliver_all(vigil, T0 + 7200)
        [change] = pd.changes
        # it names the alert on-call has open, the one the escalation paged
        assert change["payload"]["custom_details"]["incident_dedup_key"] == "vigil-incident-1~2"
        assert change["payload"]["summary"].startswith(f"Vigil rollback of {MODEL} v2 -> v1: done")


def test_an_opsgenie_note_refused_for_long_never_holds_back_the_escalation(tmp_path):
    with FakeOpsgenie(OG_KEY) as og:
        vigil, took = roll_back_then_escalate(tmp_path, {
            "name": "og", "kind": "opsgenie", "api_key_env": "OG_API_KEY", "url": og.url,
            "events": ["incident", "rollback"], **FAST},
            lambda: og.force(503, count=10_000, path="/notes"))
        [paging] = [a for a in og.alerts() if a.status == "open"]
        assert paging.alias == "vigil-incident-1~2" and paging.priority == "P1"
        assert took < 5.0, took
        assert not any(n.startswith("Vigil rollback") for a in og.alerts() for n in a.notes)

        og.clear_faults()
        deliver_all(vigil, T0 + 7200)
        noted = [a.alias for a in og.alerts() for n in a.notes if n.startswith("Vigil rollback")]
        assert noted == ["vigil-incident-1~2"], [(a.alias, a.notes) for a in og.alerts()]


def test_a_change_event_sent_beside_the_next_page_leaves_that_pages_alert_to_the_resolve(tmp_path):
    """Now a change event and the page after it can be in flight together: the change event,
    claimed with the ref before the escalation, must not put that older ref back over the new
    one (the resolve would then close the alert already resolved and leave `~2` paging)."""
    from alerts.outbox import DeliveryResult, DeliveryStatus, MessageKind
    from monitor.store.repository import Store

    store = Store(make_config(tmp_path).store.url)
    old, new = {"dedup_key": "vigil-incident-1"}, {"dedup_key": "vigil-incident-1~2"}
    with store.tx() as s:
        store.enqueue(s, "pd", MessageKind.INCIDENT, "incident:1", {"step": "open"}, T0)
    [opened] = store.outbox.claim_due(T0)
    assert store.outbox.record(opened, DeliveryResult(DeliveryStatus.DELIVERED, ref=old), T0, 15.0)
    with store.tx() as s:
        store.enqueue(s, "pd", MessageKind.ROLLBACK, "incident:1", {"status": "done"}, T0 + 1)
        store.enqueue(s, "pd", MessageKind.INCIDENT, "incident:1", {"step": "update"}, T0 + 2)
    change, escalation = store.outbox.claim_due(T0 + 3)  # both at once: nothing waits for the change
    assert (change.message.kind, escalation.message.kind) == (MessageKind.ROLLBACK, MessageKind.INCIDENT)
    assert store.outbox.record(escalation, DeliveryResult(DeliveryStatus.DELIVERED, ref=new), T0 + 3, 15.0)
    assert store.outbox.record(change, DeliveryResult(DeliveryStatus.DELIVERED, ref=old), T0 + 3, 15.0)
    assert store.outbox.refs("pd") == {"incident:1": new}


def test_a_change_event_refused_for_long_re_sends_no_held_incidents_trigger_every_cycle(tmp_path):
    """Both models paged on their own, then their GPU saturated and the shared cause took over
    (it pages for them). A person rolled one back while PagerDuty refused change events: its
    change event, still on its way, read as a change of the incident not yet sent, so every
    cycle wrote the held incident's identical trigger again (15 in 15 cycles)."""
    import numpy as np

    from monitor.receivers import build_receivers
    from tests.integration.test_receivers import pd_receiver
    from tests.integration.test_shared_cause import SEL, _Sink, config, cycles, prometheus, registry

    with FakePagerDuty() as pd:
        prom = prometheus(T0 + 1800)
        prom.curves[f"DCGM_FI_DEV_GPU_UTIL{SEL}"] = lambda ts: np.where((ts >= T0 + 300) & (ts < T0 + 1800), 99.0, 40.0)
        cfg = config(tmp_path, receivers=[pd_receiver(pd.url, severities=["warning", "critical"],
                                                      events=["incident", "rollback"])])
        reg = registry()
        reg.aliases[(MODEL, "champion")] = "2"
        vigil = make_vigil(cfg, prometheus=prom, registry=reg, notifiers={"sink": _Sink(), **build_receivers(cfg)})
        cycles(vigil, [T0 + 60 * k for k in range(10)])  # both paged, then held by their group
        pd.force(429, count=10**5, retry_after="1", path="/v2/change/enqueue")
        assert vigil.operator.rollback(RollbackAsk(cfg.models[0], "1", "p99", "api:sre", 1, T0 + 601)).status == "done"
        seen = len(pd.events)
        cycles(vigil, [T0 + 620 + 60 * k for k in range(15)])
        triggers = [e["dedup_key"] for e in pd.events[seen:] if e["event_action"] == "trigger"]
        assert triggers.count("vigil-incident-1") <= 2, triggers  # the rollback shown, not one per cycle
        assert pd.changes == []
