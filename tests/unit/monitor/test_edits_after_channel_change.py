"""A reload (or a restart with a new file) moves a model's owner_channel. An ack or a
rollback afterwards is an edit of the messages people have: it must land in the channels
that have the incident's message, not post a fresh copy in the new channel (where nobody
was told it opened, and the old message would go on showing it unacknowledged)."""
from __future__ import annotations

import time

from alerts.outbox import DeliveryResult, DeliveryStatus, MessageKind, OutboxMessage
from monitor.cycle.rollback_ask import RollbackAsk
from tests.helpers_vigil import MODEL, T0, incident_prometheus, make_config, make_vigil, model_config, serving_registry

NEW_OWNER = "#recsys-owners-new"


class Chat:
    """A chat notifier (one message per channel), never drained: the outbox rows are the test."""

    name = "slack"

    def deliver(self, message: OutboxMessage) -> DeliveryResult:
        return DeliveryResult(DeliveryStatus.DELIVERED, ref={"channel": message.payload.get("channel"), "ts": "1"})


def _channels(vigil, incident_id: int, after: int = 0) -> set[str]:
    return {r.payload.get("channel") for r in vigil.store.outbox.for_prefix(f"incident:{incident_id}")
            if r.id > after and r.kind == MessageKind.INCIDENT and r.notifier == "slack"}


def _told(tmp_path, **cfg):
    registry = serving_registry(versions=("1", "2"))
    vigil = make_vigil(make_config(tmp_path, **cfg), prometheus=incident_prometheus(), registry=registry,
                       notifiers={"slack": Chat()})
    incident_id = vigil.run_cycle(MODEL, T0).incident_id
    assert incident_id is not None
    told = _channels(vigil, incident_id)
    assert told and NEW_OWNER not in told
    moved = make_config(tmp_path, models=[model_config(owner_channel=NEW_OWNER)], **cfg)
    later = make_vigil(moved, prometheus=incident_prometheus(), registry=registry,
                       notifiers={"slack": Chat()})
    last = max(r.id for r in later.store.outbox.for_prefix(f"incident:{incident_id}"))
    return later, incident_id, told, last, registry


def test_an_ack_after_owner_channel_moved_edits_the_message_people_have(tmp_path) -> None:
    vigil, incident_id, told, last, _ = _told(tmp_path)
    vigil.operator.acknowledge(incident_id, "api:alice", T0 + 30)
    edited = _channels(vigil, incident_id, after=last)
    assert edited, "the ack is shown somewhere"
    assert edited <= told, f"the ack posted a new message in {edited - told}, not an edit of the one in {told}"


def test_a_rollback_after_owner_channel_moved_edits_the_message_people_have(tmp_path) -> None:
    vigil, incident_id, told, last, registry = _told(tmp_path, policy={"rollback": {"enabled": False}})
    m = vigil.config.model(MODEL)
    registry.aliases[(MODEL, "champion")] = "2"
    done = vigil.operator.rollback(RollbackAsk(m, "1", "CTR -10% since v2", "api:alice", incident_id, time.time()))
    assert done.status == "done", done
    edited = _channels(vigil, incident_id, after=last)
    assert edited, "the rollback is shown in the incident's message"
    assert edited <= told, f"the rollback posted a new message in {edited - told}, not an edit of the one in {told}"


def test_a_resolve_after_owner_channel_moved_closes_the_message_people_have(tmp_path) -> None:
    """The old channel's message went on showing the incident open for ever, and the new
    channel got a "resolved" for an incident it was never told of."""
    registry = serving_registry(versions=("1", "2"))
    prom = incident_prometheus(bad_until=T0 + 30)
    vigil = make_vigil(make_config(tmp_path), prometheus=prom, registry=registry, notifiers={"slack": Chat()})
    incident_id = vigil.run_cycle(MODEL, T0).incident_id
    assert incident_id is not None
    told = _channels(vigil, incident_id)
    moved = make_config(tmp_path, models=[model_config(owner_channel=NEW_OWNER)])
    later = make_vigil(moved, prometheus=prom, registry=registry, notifiers={"slack": Chat()})
    last = max(r.id for r in later.store.outbox.for_prefix(f"incident:{incident_id}"))
    steps = [later.run_cycle(MODEL, T0 + 60 * k).step for k in range(20, 24)]  # the bad window left the lookback
    assert "resolve" in steps, steps
    rows = [r for r in later.store.outbox.for_prefix(f"incident:{incident_id}")
            if r.id > last and r.notifier == "slack"]
    where = {(str(r.kind), r.payload.get("channel")) for r in rows}
    assert where == {("incident", c) for c in told} | {("reply", c) for c in told}, \
        f"the resolve went to {where}; the message people have is in {told}"


def test_an_escalation_after_owner_channel_moved_updates_the_old_message_too(tmp_path) -> None:
    """The new channel gets the critical; the old one's message, which people have and
    act on (its buttons), went on showing the warning."""
    vigil, incident_id, told, last, _ = _told(tmp_path)
    assert vigil.run_cycle(MODEL, T0 + 60).step == "update"  # critical now
    (row,) = vigil.store.incidents()
    assert row.severity == "critical"
    rows = [r for r in vigil.store.outbox.for_prefix(f"incident:{incident_id}")
            if r.id > last and r.notifier == "slack" and r.kind == MessageKind.INCIDENT]
    shown = {r.payload.get("channel"): r.payload.get("severity") for r in rows}
    assert NEW_OWNER in shown, shown
    assert all(shown.get(c) == "critical" for c in told), f"the old message was left behind: {shown}"
