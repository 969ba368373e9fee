"""A sender paused past its claim on a row it claimed late in a long round (a slow receiver
before it) sent the message again when it resumed, after another replica had taken the row
over and sent it: a second page. A claim taken late in a round is lengthened by the time the
round has run (its deadline is written from the round's start), but the sender judged its
own lapse against that longer length from the claim, so it believed a claim that had run out
still held. It now judges it against the claim's own length from when it was taken."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from alerts.outbox import DeliveryResult, DeliveryStatus, MessageKind, OutboxMessage
from monitor import failpoints
from monitor.cycle.deliver import OutboxSender
from monitor.metrics import VigilMetrics
from monitor.store.repository import Store
from tests.helpers_replicas import sqlite_or_postgres_url

CLAIM_S = 1.5
SLOW_S = 5.0  # the first message's receiver: the second row is claimed this far into the round
PAUSE_S = 4.0  # past its claim (1.5 s), short of the claim plus the round so far (6.5 s)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return sqlite_or_postgres_url(request.param, tmp_path, lambda: request.getfixturevalue("postgres_url"))


class Receiver:
    """Takes every message; the first one slowly."""

    name = "pager"

    def __init__(self) -> None:
        self.got: list[str] = []

    def deliver(self, message: OutboxMessage) -> DeliveryResult:
        self.got.append(message.key)
        if len(self.got) == 1:
            time.sleep(SLOW_S)
        return DeliveryResult(DeliveryStatus.DELIVERED, ref={"id": message.id})


def test_a_sender_paused_on_a_row_claimed_late_in_a_round_leaves_it_to_the_one_that_took_it_over(
        url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    stores = [Store(url), Store(url)]
    now = time.time()
    with stores[0].tx() as s:
        for key in ("incident:1:oncall", "incident:2:oncall"):
            stores[0].enqueue(s, "pager", MessageKind.INCIDENT, key, {"text": key}, now)
    pager = Receiver()
    paused, other = (OutboxSender(s, {"pager": pager}, VigilMetrics(), claim_s=CLAIM_S) for s in stores)
    failpoints.reset()
    monkeypatch.setenv(failpoints.ENV, f"before_notifier_call=sleep:{PAUSE_S}@2")  # its second row
    thread = threading.Thread(target=paused.deliver_due, args=(time.time(),), kwargs={"database_clock": True})
    thread.start()
    deadline = time.monotonic() + SLOW_S + 10
    while stores[1].outbox_counts().get("sending") != 1 or not stores[1].outbox_counts().get("delivered"):
        assert time.monotonic() < deadline, stores[1].outbox_counts()
        time.sleep(0.02)
    time.sleep(CLAIM_S + 0.3)  # its claim of the second row has lapsed, by the database's clock
    assert other.deliver_due(time.time(), database_clock=True) == 1, "the other replica took the row over"
    thread.join(timeout=30)
    assert pager.got == ["incident:1:oncall", "incident:2:oncall"], f"sent: {pager.got}"
    assert stores[1].outbox_counts() == {"delivered": 2}
    for st in stores:
        st.close()
