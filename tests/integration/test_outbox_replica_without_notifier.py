"""Two replicas drain one outbox; one of them cannot send a receiver's messages: the receiver
is not in its config (a reload on that replica only), or its secret is not in its environment.
That replica claimed the page, could not send it and put it back by the outbox's back-off
(15 s doubling to an hour): the replica that could send it waited 945 s after six such grabs."""
from __future__ import annotations

from pathlib import Path

import pytest

from alerts.outbox import DeliveryResult, DeliveryStatus, MessageKind, OutboxMessage
from alerts.receivers.http import SecretSource
from monitor.cycle.deliver import OutboxSender
from monitor.metrics import VigilMetrics
from monitor.store.repository import Store
from monitor.store.tables import OutboxRow

pytestmark = pytest.mark.integration
T = 1_800_000_000.0


class Pager:
    name = "pd"

    def __init__(self, routing_key: SecretSource | None = None) -> None:
        self.routing_key = routing_key
        self.sent: list[int] = []

    def deliver(self, message: OutboxMessage) -> DeliveryResult:
        self.routing_key and self.routing_key.read()
        self.sent.append(message.id)
        return DeliveryResult(DeliveryStatus.DELIVERED, ref={"dedup_key": "vigil-incident-1"})


def _page(store: Store) -> int:
    with store.tx() as s:
        return store.enqueue(s, "pd", MessageKind.INCIDENT, "incident:1", {"incident_id": 1}, T).id


def _row(store: Store, row_id: int) -> OutboxRow:
    with store.tx() as s:
        row = s.get(OutboxRow, row_id)
        assert row is not None
        return row


@pytest.mark.parametrize("lacking", ["not configured", "secret missing"])
def test_a_replica_that_cannot_send_a_page_does_not_delay_the_one_that_can(tmp_path: Path, monkeypatch, lacking):
    monkeypatch.delenv("VIGIL_TEST_NO_PD_KEY", raising=False)
    store = Store(f"sqlite:///{tmp_path}/vigil.db")
    row_id = _page(store)
    unable = {} if lacking == "not configured" else {"pd": Pager(SecretSource("pd key", env="VIGIL_TEST_NO_PD_KEY"))}
    a, pd = OutboxSender(store, unable, VigilMetrics()), Pager()
    b = OutboxSender(store, {"pd": pd}, VigilMetrics())
    for k in range(6):  # replica A's round comes first every time
        assert a.deliver_due(T + k) == 0
    row = _row(store, row_id)
    assert (row.status, row.attempts, row.next_attempt_at <= T + 6) == ("pending", 0, True), row.last_error
    assert b.deliver_due(T + 6) == 1 and pd.sent == [row_id], "the replica that has the receiver sends it at once"


def test_a_page_no_replica_can_send_waits_named_and_its_age_is_exported(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("VIGIL_TEST_NO_PD_KEY", raising=False)
    store = Store(f"sqlite:///{tmp_path}/vigil.db")
    row_id = _page(store)
    metrics = VigilMetrics()
    a = OutboxSender(store, {"pd": Pager(SecretSource("pd key", env="VIGIL_TEST_NO_PD_KEY"))}, metrics)
    a.deliver_due(T + 1200)
    row = _row(store, row_id)
    assert row.status == "pending" and "VIGIL_TEST_NO_PD_KEY" in (row.last_error or "")
    # VigilNotificationStuck fires on this over 900 s (dashboards/vigil-alerts.rules.yml)
    assert metrics.outbox_oldest_age._value.get() == pytest.approx(1200.0)
    b = OutboxSender(store, {}, VigilMetrics())  # nor a replica whose config dropped it
    b.deliver_due(T + 1300)
    assert "not configured" in (_row(store, row_id).last_error or "")
