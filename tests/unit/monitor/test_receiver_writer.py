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


def group_payload(severity: str = "warning", status: str = "open", **over: Any) -> dict[str, Any]:
    models = [{"model": "recommender", "incident_id": 1, "severity": severity, "open": status == "open",
               "title": "p99 latency over its SLO", "cause_explanation": "gpu-node-1 saturated",
               "findings": [{"kind": "slo_breach", "entity": "p99_latency", "value": 0.8, "threshold": 0.5}]},
              {"model": "ranker", "incident_id": 2, "severity": "warning", "open": status == "open",
               "title": "p99 latency over its SLO", "findings": []}]
    return {"group_id": 7, "cause_kind": "gpu_saturation", "cause": "gpu-node-1", "severity": severity,
            "status": status, "opened_at": T, "models": models, **over}


def write_group(store: Store, writer: ReceiverWriter, t: float, payload: dict[str, Any]) -> list[str]:
    with store.tx() as s:
        return writer.group(s, payload, t)


def test_a_group_pages_a_receiver_once_its_severity_matches_escalates_and_resolves_on_one_key(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'v.db'}")
    writer = ReceiverWriter(store, {"pd": Recorder(Receiving(Match(severities=frozenset({"critical"}))))})
    assert write_group(store, writer, T, group_payload("warning")) == [], "a warning group does not page it"
    assert write_group(store, writer, T + 300, group_payload("critical")) == ["pd"], "escalated: it pages"
    assert write_group(store, writer, T + 900, group_payload("critical", status="resolved")) == ["pd"]
    rows = store.outbox_for_prefix("group:7")
    assert [r.payload["dedup_key"] for r in rows] == ["vigil-group-7"] * 2
    assert [(r.payload["severity"], r.payload["status"]) for r in rows] == [("critical", "open"),
                                                                           ("critical", "resolved")]
    assert [m["model"] for m in rows[0].payload["models"]] == ["recommender", "ranker"]


def test_a_resolved_group_a_receiver_never_had_is_not_sent(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'v.db'}")
    writer = ReceiverWriter(store, {"pd": Recorder(Receiving(Match(models=frozenset({"fraud"}))))})
    assert write_group(store, writer, T, group_payload("critical")) == [], "none of its models"
    assert write_group(store, writer, T + 60, group_payload("critical", status="resolved")) == []


def test_a_held_member_pages_only_a_receiver_that_has_it_already(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'v.db'}")
    writer = ReceiverWriter(store, {"pd": Recorder(Receiving())})
    with store.tx() as s:
        assert writer.incident(s, snap(incident_id=1), {}, T, held=True) == [], "its group pages for it"
        assert writer.incident(s, snap(incident_id=2), {}, T, held=False) == ["pd"]  # paged on its own
        assert writer.incident(s, snap(incident_id=2), {}, T + 60, held=True) == ["pd"], \
            "then held: the page it opened still hears of it"
        assert writer.incident(s, snap(incident_id=3, status="resolved"), {}, T) == [], \
            "a resolve never opens anything"
