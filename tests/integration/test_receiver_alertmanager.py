"""Vigil's incidents pushed to a real Alertmanager (Debian's prometheus-alertmanager on a
free 127.0.0.1 port), read back through its own API as a team routing through it would.

The scenario runs fifteen minutes in the past on the real clock, so Alertmanager, which
judges startsAt/endsAt against its own clock, sees the times as they would be live.
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from monitor.vigil import Vigil
from tests.fixtures_alertmanager import AlertmanagerNotInstalled, LocalAlertmanager, find_alertmanager
from tests.helpers_vigil import MODEL, incident_prometheus, make_config, make_vigil, serving_registry

B = float(int(time.time()) - 900)  # the scenario's first cycle


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalAlertmanager]:
    try:
        find_alertmanager()
    except AlertmanagerNotInstalled as e:
        pytest.skip(str(e))
    am = LocalAlertmanager(tmp_path_factory.mktemp("alertmanager"))
    am.start()
    try:
        yield am
    finally:
        am.stop()


def am_vigil(tmp_path, am: LocalAlertmanager, **over: Any) -> Vigil:
    receiver = {"name": "am", "kind": "alertmanager", "url": am.url, "resend_every": "1s",
                "labels": {"team": "ml-platform"}, "backoff_s": 0.0, "max_wait_s": 0.2, **over}
    cfg = make_config(tmp_path, receivers=[receiver])
    return make_vigil(cfg, prometheus=incident_prometheus(bad_from=B - 600, bad_until=B + 120),
                      registry=serving_registry(registered_at=B - 30 * 86400), start=B)


def step(vigil: Vigil, t: float) -> None:
    vigil.run_cycle(MODEL, t)
    for _ in range(10):
        if vigil.deliver(t) == 0:
            break


def ours(am: LocalAlertmanager, dedup_key: str) -> list[dict[str, Any]]:
    return [a for a in am.alerts() if a["labels"].get("vigil_incident") == dedup_key]


def test_incident_fires_escalates_stays_alive_and_resolves_in_alertmanager(tmp_path, alertmanager):
    vigil = am_vigil(tmp_path, alertmanager, dedup_prefix="vigil-am1")
    key = "vigil-am1-incident-1"

    step(vigil, B)  # a warning opens
    [alert] = ours(alertmanager, key)
    assert {k: alert["labels"][k] for k in ("alertname", "model", "severity", "team")} == {
        "alertname": "VigilIncident", "model": MODEL, "severity": "warning", "team": "ml-platform"}
    assert alert["labels"]["entity"], "the top cause's entity (or the model) is a label to route on"
    assert alert["status"]["state"] == "active" and alert["receivers"] == [{"name": "null"}]
    assert alert["annotations"]["summary"].startswith(f"[warning] {MODEL}: ")
    assert alert["startsAt"].startswith(time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(B)))

    step(vigil, B + 60)  # critical: the warning-labelled alert ends, one critical alert fires
    [alert] = ours(alertmanager, key)
    assert alert["labels"]["severity"] == "critical"

    # Open for longer than its endsAt horizon (4 × resend_every = 4 s): the sender re-pushes it.
    first_end = alert["endsAt"]
    deadline = time.monotonic() + 6.0
    while time.monotonic() < deadline:
        vigil.deliver(B + 61)
        time.sleep(0.5)
    [alert] = ours(alertmanager, key)
    assert alert["status"]["state"] == "active", "kept alive while the incident is open"
    assert alert["endsAt"] > first_end

    step(vigil, B + 720)
    step(vigil, B + 780)  # two quiet cycles: resolved, with endsAt in the past
    assert ours(alertmanager, key) == [], "resolved in Alertmanager when Vigil resolves"
    [row] = [r for r in vigil.store.outbox_for_prefix("incident:1") if r.notifier == "am"][-1:]
    assert row.status == "delivered"


def test_a_dead_alertmanager_keeps_the_alert_until_it_is_back(tmp_path, alertmanager):
    from tests.fixtures_alertmanager import free_port

    vigil = am_vigil(tmp_path, alertmanager, dedup_prefix="vigil-am2", url=f"http://127.0.0.1:{free_port()}")
    step(vigil, B)
    [row] = [r for r in vigil.store.outbox_for_prefix("incident:1") if r.notifier == "am"]
    assert row.status == "pending" and "cannot connect" in row.last_error
    assert [r.status for r in vigil.store.outbox_for_prefix("incident:1") if r.notifier == "sink"] == ["delivered"]
    # Alertmanager is back at the configured address (here: the receiver pointed at the live one).
    receiver = vigil.notifiers["am"]
    receiver.endpoint = alertmanager.url + "/api/v2/alerts"  # type: ignore[attr-defined]
    for _ in range(5):
        vigil.deliver(B + 3600)
    [alert] = ours(alertmanager, "vigil-am2-incident-1")
    assert alert["labels"]["severity"] == "warning" and alert["status"]["state"] == "active"


def test_a_shared_cause_is_one_alert_that_keeps_its_labels_as_members_change(tmp_path, alertmanager):
    """The group's record, as the outbox holds it, pushed to the real Alertmanager: one
    VigilSharedCause alert listing the models, the same alert when one of them recovers,
    ended with the group."""
    from alerts.outbox import DeliveryStatus, MessageKind, OutboxMessage
    from alerts.receivers.record import group_record
    from monitor.receivers import build_receivers
    from tests.unit.monitor.test_receiver_writer import group_payload

    cfg = make_config(tmp_path, receivers=[{"name": "am", "kind": "alertmanager", "url": alertmanager.url,
                                            "dedup_prefix": "vigil-am-g"}])
    am = build_receivers(cfg)["am"]
    ref = None

    def push(payload: dict[str, Any], n: int, t: float) -> None:
        nonlocal ref
        record = group_record({**payload, "opened_at": B}, prefix="vigil-am-g", updated_at=t)
        got = am.deliver(OutboxMessage(n, "am", MessageKind.INCIDENT, "group:7", record, ref=ref))
        assert got.status == DeliveryStatus.DELIVERED, got.error
        ref = got.ref

    push(group_payload("critical"), 1, B + 60)
    [alert] = ours(alertmanager, "vigil-am-g-group-7")
    assert {k: alert["labels"][k] for k in ("alertname", "severity", "cause_kind", "entity")} == {
        "alertname": "VigilSharedCause", "severity": "critical", "cause_kind": "gpu_saturation",
        "entity": "gpu-node-1"}
    assert alert["annotations"]["models"].splitlines()[0].startswith("recommender (critical)")
    assert alert["annotations"]["models"].splitlines()[1].startswith("ranker (warning)")

    one_left = group_payload("critical")
    one_left["models"][1]["open"] = False
    push(one_left, 2, B + 120)
    [alert] = ours(alertmanager, "vigil-am-g-group-7")  # the same alert, not a second one
    assert alert["annotations"]["models"].splitlines() == [alert["annotations"]["models"].splitlines()[0]]
    assert alert["status"]["state"] == "active"

    push(group_payload("critical", status="resolved"), 3, B + 180)
    assert [a for a in ours(alertmanager, "vigil-am-g-group-7") if a["status"]["state"] == "active"] == []


def test_a_held_members_escalation_keeps_its_alert_and_opens_no_second_one(tmp_path, alertmanager):
    """A member that paged on its own (a warning) escalates while its shared cause's group
    speaks for it (`held`): the group's alert pages for the escalation. Labels are an alert's
    identity in Alertmanager: a `severity` label turned critical was a new alert (routed to the
    on-call, beside the group's) and ended the one people had; the member's alert keeps its labels."""
    from alerts.outbox import DeliveryStatus, MessageKind, OutboxMessage
    from alerts.payload import IncidentSnapshot
    from alerts.receivers.mapping import HELD
    from alerts.receivers.record import receiver_record
    from monitor.receivers import build_receivers

    cfg = make_config(tmp_path, receivers=[{"name": "am", "kind": "alertmanager", "url": alertmanager.url,
                                            "dedup_prefix": "vigil-am-h"}])
    am = build_receivers(cfg)["am"]
    snap = IncidentSnapshot(1, MODEL, "warning", "open", "p99 latency over its SLO", B, None, None, [], [], False)
    first = receiver_record(snap, prefix="vigil-am-h", updated_at=B, links={})
    got = am.deliver(OutboxMessage(1, "am", MessageKind.INCIDENT, "incident:1", first))
    assert got.status == DeliveryStatus.DELIVERED, got.error
    critical = {**receiver_record(replace(snap, severity="critical"), prefix="vigil-am-h", updated_at=B + 60,
                                 links={}),
                HELD: True}
    got = am.deliver(OutboxMessage(2, "am", MessageKind.INCIDENT, "incident:1", critical, ref=got.ref))
    assert got.status == DeliveryStatus.DELIVERED, got.error
    active = [a for a in ours(alertmanager, "vigil-am-h-incident-1") if a["status"]["state"] == "active"]
    assert [a["labels"]["severity"] for a in active] == ["warning"], \
        f"the held escalation made a new alert in Alertmanager: {[a['labels'] for a in active]}"
    # the keep-alive re-pushes the alert under the same labels
    assert got.ref and got.ref["alert"]["labels"]["severity"] == "warning"
