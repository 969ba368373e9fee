"""A reload moves a member's owner_channel while its shared cause is open. The group's
message in the old channel is the one people have (its buttons, its thread): the group's
resolve must close it there, not leave it showing the shared cause open for ever."""
from __future__ import annotations

import pytest

from alerts.outbox import DeliveryResult, DeliveryStatus, MessageKind, OutboxMessage
from tests.helpers_vigil import OWNER, T0, make_vigil, model_config
from tests.integration.test_shared_cause import RANKING, config, cycles, prometheus, registry

pytestmark = pytest.mark.integration
GPU = {"selector": 'Hostname="gpu-node-1"'}
NEW_OWNER = "#recsys-owners-new"


class Chat:
    """A chat notifier (one message per channel) that keeps a ref, as Slack does."""

    name = "sink"

    def deliver(self, message: OutboxMessage) -> DeliveryResult:
        return DeliveryResult(DeliveryStatus.DELIVERED, ref={"channel": message.payload.get("channel"), "ts": "1"})


def test_a_shared_cause_resolves_its_message_in_a_channel_a_reload_moved_away(tmp_path):
    vigil = make_vigil(config(tmp_path), prometheus=prometheus(T0 + 180), registry=registry(),
                       notifiers={"sink": Chat()})
    cycles(vigil, [T0, T0 + 60, T0 + 120])
    had = {r.payload["channel"] for r in vigil.store.outbox_for_prefix("group:1") if r.kind == MessageKind.GROUP}
    assert OWNER in had and NEW_OWNER not in had
    moved = config(tmp_path, models=[model_config(gpu=GPU, owner_channel=NEW_OWNER),
                                     model_config("ranker", gpu=GPU, owner_channel=RANKING)])
    vigil = make_vigil(moved, prometheus=prometheus(T0 + 180), registry=registry(), notifiers={"sink": Chat()})
    cycles(vigil, [T0 + 2100 + 60 * i for i in range(4)])
    assert vigil.store.incidents(status="open") == []
    resolved = {r.payload["channel"] for r in vigil.store.outbox_for_prefix("group:1")
                if r.kind == MessageKind.GROUP and r.payload["status"] == "resolved"}
    assert had <= resolved, f"the group's message in {had - resolved} was left showing it open"
