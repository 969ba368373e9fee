"""Where an incident's message is (`Outbox.told_channels`) is read in two statements: the
delivered refs and the rows still on their way. On PostgreSQL (read committed) each
statement sees the commits made before it: a first delivery committed between the two
(the sender marks the row delivered and writes its ref in one transaction) was in neither,
so a resolve or an ack after a reload moved owner_channel missed the message people have."""
from __future__ import annotations

import uuid

import pytest
from sqlalchemy import event, text

from alerts.outbox import DeliveryResult, DeliveryStatus, MessageKind
from monitor.store.repository import Store

pytestmark = pytest.mark.integration


def test_a_delivery_committed_between_the_two_reads_is_still_seen(postgres_url):
    base = Store(postgres_url)
    schema = "t" + uuid.uuid4().hex[:8]
    with base.engine.begin() as c:
        c.execute(text(f"create schema {schema}"))
    base.close()
    store = Store(f"{postgres_url}?options=-csearch_path%3D{schema}")
    try:
        with store.tx() as s:
            store.enqueue(s, "slack", MessageKind.INCIDENT, "incident:1:#old", {"channel": "#old"}, 100.0)
        (claim,) = store.outbox.claim_due(200.0, claim_s=60.0)
        armed = {"statements": 0, "on": False}

        def deliver_between(*_: object) -> None:
            if not armed["on"]:
                return
            armed["statements"] += 1
            if armed["statements"] == 2:  # the second read of told_channels is about to run
                armed["on"] = False
                assert store.outbox.record(claim, DeliveryResult(DeliveryStatus.DELIVERED,
                                                                 ref={"channel": "C1", "ts": "1.1"}), 201.0, backoff=15)

        event.listen(store.engine, "before_cursor_execute", deliver_between)
        with store.tx() as s:
            armed["on"] = True
            got = store.outbox.told_channels(s, 1)
        assert armed["statements"] == 2
        assert got == ["#old"], "the message delivered while told_channels read was in neither read"
    finally:
        store.close()
