"""A down or rate-limited Slack with more due messages than one delivery pass reads
(`limit`) ahead of a page: its messages are left out of the passes, so the page still
goes out in the same call."""
from __future__ import annotations

from alerts.outbox import DeliveryResult, DeliveryStatus, MessageKind, OutboxMessage
from monitor.cycle.deliver import OutboxSender
from monitor.metrics import VigilMetrics
from monitor.store.repository import Store
from tests.helpers_vigil import T0, make_config


class DownSlack:  # connection refused: fails fast, RETRY
    name = "slack"

    def __init__(self) -> None:
        self.calls = 0

    def deliver(self, message: OutboxMessage) -> DeliveryResult:
        self.calls += 1
        return DeliveryResult(DeliveryStatus.RETRY, error="connection refused")


class Pager:
    name = "pagerduty"

    def __init__(self) -> None:
        self.sent: list[str] = []

    def deliver(self, message: OutboxMessage) -> DeliveryResult:
        self.sent.append(message.key)
        return DeliveryResult(DeliveryStatus.DELIVERED)


def test_a_page_behind_a_down_slacks_backlog_goes_out(tmp_path) -> None:
    cfg = make_config(tmp_path)
    store = Store(cfg.store.url)
    with store.tx() as s:
        for i in range(20):  # twenty incidents' Slack messages, queued first
            store.enqueue(s, "slack", MessageKind.INCIDENT, f"incident:{i}:#a", {"x": i}, T0)
        store.enqueue(s, "pagerduty", MessageKind.INCIDENT, "incident:99", {"x": 1}, T0)
    slack, pager = DownSlack(), Pager()
    sender = OutboxSender(store, {"slack": slack, "pagerduty": pager}, VigilMetrics())
    for k in range(5):  # five delivery calls, e.g. five cycles, Slack down throughout
        sender.deliver_due(T0 + 1 + k, limit=10)
    assert pager.sent == ["incident:99"], f"page not delivered after 5 calls; slack called {slack.calls}x"


def test_a_fleet_wide_flood_with_slack_rate_limited_pages_everyone(tmp_path) -> None:
    """Prometheus blips: a no-data incident for each of 60 models, each a message to two
    Slack channels and a page, written model by model. Slack answers 429 (RETRY) to the
    first message. With the default limit of 100 heads per pass, every page written after
    the 100th head waits, call after call, while Slack's skipped heads keep filling the pass."""
    cfg = make_config(tmp_path)
    store = Store(cfg.store.url)
    with store.tx() as s:
        for i in range(60):
            store.enqueue(s, "slack", MessageKind.INCIDENT, f"incident:{i}:#owner", {"x": i}, T0)
            store.enqueue(s, "slack", MessageKind.INCIDENT, f"incident:{i}:#oncall", {"x": i}, T0)
            store.enqueue(s, "pagerduty", MessageKind.INCIDENT, f"incident:{i}", {"x": i}, T0)
    slack, pager = DownSlack(), Pager()
    sender = OutboxSender(store, {"slack": slack, "pagerduty": pager}, VigilMetrics())
    for k in range(5):  # five calls of the sender thread
        sender.deliver_due(T0 + 1 + k)
    assert len(pager.sent) == 60, f"{len(pager.sent)} of 60 pages out after 5 calls"
