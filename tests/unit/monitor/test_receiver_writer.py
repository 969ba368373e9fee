"""Which incident changes a receiver is given: from its first change at a matching model
and severity on, every change (so a page is never left open), and nothing before."""
from __future__ import annotations

from typing import Any

from alerts.outbox import DeliveryResult, DeliveryStatus, OutboxMessage
from alerts.receivers.base import RECEIVER_ROUTE, Match, Receiving
from monitor.cycle.deliver import OutboxSender
from monitor.cycle.receivers import ReceiverWriter
from monitor.metrics import VigilMetrics
from monitor.store.repository import Store
from tests.unit.alerts.test_receiver_mapping import snap

T = 1_800_000_000.0


class Recorder:
    route = RECEIVER_ROUTE

    def __init__(self, receiving: Receiving) -> None:
        self.name, self.receiving = "pd", receiving

    def deliver(self, message: OutboxMessage) -> DeliveryResult:
        return DeliveryResult(DeliveryStatus.DELIVERED, ref={"state": "triggered"})


def write(store: Store, writer: ReceiverWriter, t: float, **over: Any) -> list[str]:
    with store.tx() as s:
        return writer.incident(s, snap(**over), {}, t)


def test_critical_only_receiver_follows_an_incident_it_paged_for_to_the_end(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'v.db'}")
    writer = ReceiverWriter(store, {"pd": Recorder(Receiving(Match(severities=frozenset({"critical"}))))})
    assert write(store, writer, T, incident_id=1, severity="warning") == [], "a warning does not page"
    assert write(store, writer, T + 60, incident_id=1, severity="critical") == ["pd"]
    assert write(store, writer, T + 120, incident_id=1, severity="warning") == ["pd"], \
        "back to warning: the page it opened is kept up to date (still pending)"
    notifiers = {"pd": Recorder(Receiving(Match(severities=frozenset({"critical"}))))}
    OutboxSender(store, notifiers, VigilMetrics()).deliver_due(T + 130)
    assert {r.status for r in store.outbox_for_prefix("incident:1")} == {"delivered"}
    assert write(store, writer, T + 180, incident_id=1, severity="warning", acknowledged_by="bob") == ["pd"], \
        "delivered, nothing open: the ref it left says the receiver has the incident"
    assert write(store, writer, T + 240, incident_id=2, severity="warning") == [], "another incident, another story"


def test_model_filter_and_dedup_prefix(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'v.db'}")
    writer = ReceiverWriter(store, {"pd": Recorder(Receiving(Match(models=frozenset({"ranker"})), "prod"))})
    assert write(store, writer, T, incident_id=1, model="recommender") == []
    assert write(store, writer, T, incident_id=2, model="ranker") == ["pd"]
    [row] = store.outbox_for_prefix("incident:2")
    assert row.payload["dedup_key"] == "prod-incident-2" and row.notifier == "pd"
