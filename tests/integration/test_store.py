"""The store on SQLite (default) and on a real PostgreSQL: outbox ordering and delivery
bookkeeping, the audit chain under concurrent writers, idempotency keys."""
from __future__ import annotations

import threading
import uuid

import pytest
from sqlalchemy import text

from alerts.audit import verify_chain
from alerts.outbox import DeliveryResult, DeliveryStatus, MessageKind
from monitor.store.repository import Store


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    if request.param == "sqlite":
        s = Store(f"sqlite:///{tmp_path / 'vigil.db'}")
    else:
        url = request.getfixturevalue("postgres_url")
        schema = "t" + uuid.uuid4().hex[:8]  # one database, a fresh schema per test
        base = Store(url)
        with base.engine.begin() as c:
            c.execute(text(f"create schema {schema}"))
        base.close()
        s = Store(f"{url}?options=-csearch_path%3D{schema}")
    yield s
    s.close()


def test_outbox_delivers_in_order_per_key_and_retries_with_backoff(store):
    with store.tx() as s:
        a1 = store.enqueue(s, "slack", MessageKind.INCIDENT, "incident:1:#a", {"v": 1}, 100.0)
        store.enqueue(s, "slack", MessageKind.INCIDENT, "incident:1:#a", {"v": 2}, 101.0)
        b1 = store.enqueue(s, "slack", MessageKind.INCIDENT, "incident:2:#a", {"v": 1}, 102.0)
    due = store.due_messages(200.0)
    assert [m.id for m in due] == [a1.id, b1.id]  # the second update for key 1 waits for the first
    store.record_delivery(due[0], DeliveryResult(DeliveryStatus.RETRY, error="ratelimited", retry_after=30), 200.0,
                          backoff=15)
    assert [m.id for m in store.due_messages(210.0)] == [b1.id]  # key 1 is backing off, and blocks its update
    store.record_delivery(due[1], DeliveryResult(DeliveryStatus.DELIVERED, ref={"channel": "C1", "ts": "1.2"}),
                          200.0, backoff=15)
    (retry,) = store.due_messages(231.0)
    assert retry.id == a1.id and retry.attempts == 1
    store.record_delivery(retry, DeliveryResult(DeliveryStatus.DELIVERED, ref={"channel": "C1", "ts": "9.9"}), 231.0,
                          backoff=15)
    (update,) = store.due_messages(232.0)
    assert update.payload == {"v": 2} and update.ref == {"channel": "C1", "ts": "9.9"}  # edits the same message
    assert store.outbox_counts() == {"delivered": 2, "pending": 1}


def test_failed_delivery_is_kept_not_retried(store):
    with store.tx() as s:
        store.enqueue(s, "slack", MessageKind.INCIDENT, "incident:1:#gone", {}, 1.0)
    (m,) = store.due_messages(2.0)
    store.record_delivery(m, DeliveryResult(DeliveryStatus.FAILED, error="channel_not_found"), 2.0, backoff=1)
    assert store.due_messages(1e9) == []
    assert store.outbox_counts() == {"failed": 1}
    assert store.outbox_for_prefix("incident:1")[0].last_error == "channel_not_found"


def test_a_rolled_back_transaction_leaves_no_orphan_message(store):
    with pytest.raises(RuntimeError), store.tx() as s:
        store.enqueue(s, "slack", MessageKind.INCIDENT, "incident:9:#a", {}, 1.0)
        raise RuntimeError("crash before commit")
    assert store.due_messages(2.0) == []


def test_audit_chain_stays_intact_under_concurrent_writers(store):
    def writer(n: int) -> None:
        for i in range(10):
            store.audit(f"w{n}", "test.write", "model:m", {"i": i}, now=1000.0 + i)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    entries = store.audit_entries()
    assert [e.seq for e in entries] == list(range(1, 41))
    assert verify_chain(entries).ok


def test_idempotency_key_is_stored_once(store):
    assert store.save_idempotent_response("rollback:m", "k1", "h", 200, {"status": "done"}, 1.0)
    assert not store.save_idempotent_response("rollback:m", "k1", "h", 200, {"status": "other"}, 2.0)
    assert store.idempotent_response("rollback:m", "k1").response == {"status": "done"}
