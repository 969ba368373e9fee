"""Replicas whose wall clocks disagree share one outbox: a message is sent once.

A live sender judges claims by the database's clock. Before, a replica whose clock ran
ahead by more than a claim's length (300 s) took over a row another replica was still
sending, and the message went out twice.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from alerts.outbox import DeliveryResult, DeliveryStatus, MessageKind, OutboxMessage
from monitor.cycle.deliver import OutboxSender
from monitor.metrics import VigilMetrics
from monitor.store.repository import Store
from tests.helpers_replicas import sqlite_or_postgres_url

AHEAD_S = 400.0  # the second replica's clock: more than a claim (300 s) ahead


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    s = Store(sqlite_or_postgres_url(request.param, tmp_path, lambda: request.getfixturevalue("postgres_url")))
    request.addfinalizer(s.close)
    return s


class SlowSlack:
    """Posts a message; while the first post is in flight, `meanwhile` runs (the other replica)."""

    name = "slack"

    def __init__(self) -> None:
        self.posted: list[int] = []
        self.meanwhile: Callable[[], None] | None = None

    def deliver(self, message: OutboxMessage) -> DeliveryResult:
        self.posted.append(message.id)
        if self.meanwhile is not None:
            other, self.meanwhile = self.meanwhile, None
            other()
        return DeliveryResult(DeliveryStatus.DELIVERED, ref={"ts": str(message.id)})


def test_a_replica_whose_clock_runs_ahead_does_not_send_a_message_being_sent(store: Store) -> None:
    now = time.time()
    with store.tx() as s:
        store.enqueue(s, "slack", MessageKind.INCIDENT, "incident:1:#ml", {"text": "drift"}, now)
    slack = SlowSlack()
    right = OutboxSender(store, {"slack": slack}, VigilMetrics())
    ahead_metrics = VigilMetrics()
    ahead = OutboxSender(store, {"slack": slack}, ahead_metrics)
    took: list[int] = []
    slack.meanwhile = lambda: took.append(ahead.deliver_due(time.time() + AHEAD_S, database_clock=True))

    assert right.deliver_due(time.time(), database_clock=True) == 1
    assert took == [0], "the replica with the fast clock took over a claim that had not lapsed"
    assert len(slack.posted) == 1, f"the message went out {len(slack.posted)} times"
    skew = ahead_metrics.registry.get_sample_value("vigil_clock_skew_seconds")
    assert skew is not None and AHEAD_S - 5 < skew < AHEAD_S + 5, skew


def test_a_live_senders_lapsed_claim_is_still_taken_over(store: Store) -> None:
    """The database's clock, not the caller's, says a claim lapsed: a sender that died
    mid-call (its claim written by the database's clock) is taken over once it has."""
    now = time.time()
    with store.tx() as s:
        store.enqueue(s, "slack", MessageKind.INCIDENT, "incident:2:#ml", {"text": "drift"}, now)
    (head,) = store.outbox.due(now)
    dead = store.outbox.claim(head, now, claim_s=0.2, claim_now=store.outbox.database_now())
    assert dead is not None
    slack = SlowSlack()
    sender = OutboxSender(store, {"slack": slack}, VigilMetrics())
    assert sender.deliver_due(time.time() - AHEAD_S, database_clock=True) == 0, "taken before the claim lapsed"
    time.sleep(0.3)
    # A clock behind the database's does not keep a lapsed claim alive either.
    assert sender.deliver_due(time.time() - AHEAD_S, database_clock=True) == 1
    assert slack.posted == [dead.message.id]


def test_a_round_that_waited_for_the_sender_does_not_read_as_clock_skew(
        store: Store, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    """The API's deliver (after a Slack action, a rollback) reads the clock, then waits for a
    round of the outbox thread still going (a hanging receiver: tens of seconds). The wait
    read as this host's clock running behind the database's: a warning 'this host's clock is
    -35 s from the database's' and vigil_clock_skew_seconds swinging, on a host with good NTP."""
    import threading

    from monitor.cycle import deliver
    monkeypatch.setattr(deliver, "SKEW_WARN_S", 0.5)  # the 30 s of a real wait, scaled down
    metrics = VigilMetrics()
    sender = OutboxSender(store, {"slack": SlowSlack()}, metrics)
    busy = threading.Thread(target=lambda: (sender.lock.acquire(), time.sleep(1.0), sender.lock.release()))
    busy.start()
    time.sleep(0.1)  # the other round holds the sender
    try:
        with caplog.at_level("WARNING", logger="vigil.sender"):
            sender.deliver_due(time.time(), database_clock=True)  # `now` read before the wait, as vigil.deliver does
    finally:
        busy.join(5)
    skew = metrics.registry.get_sample_value("vigil_clock_skew_seconds")
    assert skew is not None and abs(skew) < 0.3, f"a wait for the sender read as {skew:.2f} s of clock skew"
    assert not [r for r in caplog.records if "clock" in r.getMessage()], caplog.text
