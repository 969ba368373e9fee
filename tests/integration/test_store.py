"""The store on SQLite (default) and on a real PostgreSQL: outbox ordering and delivery
bookkeeping, the audit chain under concurrent writers, idempotency keys."""
from __future__ import annotations

import threading
import time
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from alerts.audit import KEYED_MARKER, ChainKey, verify_chain
from alerts.outbox import DeliveryResult, DeliveryStatus, MessageKind
from monitor.audit.checkpointer import AuditSettings, Checkpointer
from monitor.audit.verify import verify_log
from monitor.store.outbox import Claim
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


def claim_due(store: Store, now: float, claim_s: float = 60.0) -> list[Claim]:
    return store.outbox.claim_due(now, claim_s=claim_s)


def test_outbox_delivers_in_order_per_key_and_retries_with_backoff(store):
    with store.tx() as s:
        a1 = store.enqueue(s, "slack", MessageKind.INCIDENT, "incident:1:#a", {"v": 1}, 100.0)
        store.enqueue(s, "slack", MessageKind.INCIDENT, "incident:1:#a", {"v": 2}, 101.0)
        b1 = store.enqueue(s, "slack", MessageKind.INCIDENT, "incident:2:#a", {"v": 1}, 102.0)
    due = claim_due(store, 200.0)
    assert [c.message.id for c in due] == [a1.id, b1.id]  # the second update for key 1 waits for the first
    assert [c.message.created_at for c in due] == [100.0, 102.0]
    assert store.outbox.record(due[0], DeliveryResult(DeliveryStatus.RETRY, error="ratelimited", retry_after=30),
                               200.0, backoff=15)
    assert claim_due(store, 210.0) == []  # key 1 is backing off and blocks its update; key 2 is being sent
    assert store.outbox.record(due[1], DeliveryResult(DeliveryStatus.DELIVERED, ref={"channel": "C1", "ts": "1.2"}),
                               200.0, backoff=15)
    (retry,) = claim_due(store, 231.0)
    assert retry.message.id == a1.id and retry.message.attempts == 1 and not retry.uncertain
    store.outbox.record(retry, DeliveryResult(DeliveryStatus.DELIVERED, ref={"channel": "C1", "ts": "9.9"}), 231.0,
                        backoff=15)
    (update,) = claim_due(store, 232.0)
    assert update.message.payload == {"v": 2} and update.message.ref == {"channel": "C1", "ts": "9.9"}
    assert store.outbox_counts() == {"delivered": 2, "sending": 1}


def test_failed_delivery_is_kept_not_retried(store):
    with store.tx() as s:
        store.enqueue(s, "slack", MessageKind.INCIDENT, "incident:1:#gone", {}, 1.0)
    (c,) = claim_due(store, 2.0)
    store.outbox.record(c, DeliveryResult(DeliveryStatus.FAILED, error="channel_not_found"), 2.0, backoff=1)
    assert claim_due(store, 1e9) == []
    assert store.outbox_counts() == {"failed": 1}
    assert store.outbox_for_prefix("incident:1")[0].last_error == "channel_not_found"


def test_a_delivery_error_quoting_a_url_with_its_password_is_stored_redacted(store):
    """The error is kept in the outbox row (and shown by `vigil outbox list` readers, SQL
    consoles, backups): a receiver's URL with user:password in it must not land there."""
    with store.tx() as s:
        store.enqueue(s, "webhook", MessageKind.INCIDENT, "incident:1", {}, 1.0)
    (c,) = claim_due(store, 2.0)
    said = "cannot connect to https://vigil:s3cr3t-pw@hooks.example.com/page: ConnectError"
    store.outbox.record(c, DeliveryResult(DeliveryStatus.RETRY, error=said), 2.0, backoff=1)
    (again,) = claim_due(store, 10.0)
    store.outbox.record(again, DeliveryResult(DeliveryStatus.FAILED, error=said + " (gave up)"), 10.0, backoff=1)
    (row,) = store.outbox_for_prefix("incident:1")
    assert "s3cr3t-pw" not in row.last_error and "hooks.example.com" in row.last_error


def test_a_day_long_retry_after_from_any_notifier_holds_its_message_minutes_not_a_day(store):
    """Slack's 429 hands its Retry-After to the outbox as it is; a proxy's 86400 held a page a day."""
    from alerts.receivers.http import MAX_RETRY_AFTER_S

    with store.tx() as s:
        store.enqueue(s, "slack", MessageKind.INCIDENT, "incident:1:#a", {}, 1.0)
    (c,) = claim_due(store, 2.0)
    store.outbox.record(c, DeliveryResult(DeliveryStatus.RETRY, error="ratelimited", retry_after=86400), 2.0,
                        backoff=15)
    assert claim_due(store, 2.0 + MAX_RETRY_AFTER_S - 1) == []
    assert [x.message.key for x in claim_due(store, 2.0 + MAX_RETRY_AFTER_S)] == ["incident:1:#a"]


def test_a_rolled_back_transaction_leaves_no_orphan_message(store):
    with pytest.raises(RuntimeError), store.tx() as s:
        store.enqueue(s, "slack", MessageKind.INCIDENT, "incident:9:#a", {}, 1.0)
        raise RuntimeError("crash before commit")
    assert claim_due(store, 2.0) == []


def test_due_for_some_keys_takes_theirs_only_wildcards_in_a_name_included(store):
    # `vigil rollback a_b` sends its own messages from the terminal: not those of a model
    # whose name the LIKE wildcard `_` would match (axb), nor another incident's.
    with store.tx() as s:
        own = store.enqueue(s, "slack", MessageKind.ROLLBACK, "rollback:a_b:#a", {}, 1.0)
        chan = store.enqueue(s, "slack", MessageKind.INCIDENT, "incident:7:#a", {}, 1.0)
        store.enqueue(s, "slack", MessageKind.ROLLBACK, "rollback:axb:#a", {}, 1.0)
        store.enqueue(s, "slack", MessageKind.INCIDENT, "incident:70:#a", {}, 1.0)
    assert sorted(h.id for h in store.outbox.due(2.0, keys=["rollback:a_b", "incident:7"])) == sorted([own.id, chan.id])


# ----------------------------------------------------------------------------- claims
def test_a_row_is_claimed_once_and_its_key_waits_while_it_is_sent(store):
    with store.tx() as s:
        a1 = store.enqueue(s, "slack", MessageKind.INCIDENT, "incident:1:#a", {"v": 1}, 1.0)
        store.enqueue(s, "slack", MessageKind.INCIDENT, "incident:1:#a", {"v": 2}, 2.0)
        sink = store.enqueue(s, "sink", MessageKind.INCIDENT, "incident:1:#a", {"v": 1}, 2.0)  # its own key
    heads = store.outbox.due(10.0)
    assert [h.status for h in heads] == ["pending", "pending"]
    first = store.outbox.claim(heads[0], 10.0, claim_s=60.0)
    assert first is not None and first.message.id == a1.id and first.token == 1 and first.deadline == 70.0
    assert store.outbox.claim(heads[0], 10.0, claim_s=60.0) is None, "a head read before the claim is stale"
    assert [h.id for h in store.outbox.due(69.0)] == [sink.id], "slack's key is busy until the claim lapses"
    assert store.outbox.claim(heads[1], 10.0) is not None


def test_a_lapsed_claim_is_taken_over_as_uncertain_and_fences_out_the_old_sender(store):
    with store.tx() as s:
        store.enqueue(s, "slack", MessageKind.INCIDENT, "incident:1:#a", {"v": 1}, 1.0)
    (old,) = claim_due(store, 10.0, claim_s=60.0)
    assert claim_due(store, 69.0) == []
    (new,) = claim_due(store, 70.0, claim_s=60.0)  # the first sender died (or stalled) mid-call
    assert new.uncertain and new.token == old.token + 1 and new.message.attempts == 1
    delivered = DeliveryResult(DeliveryStatus.DELIVERED, ref={"channel": "C1", "ts": "1.0"})
    assert not store.outbox.record(old, delivered, 71.0, backoff=15), "the stalled sender lost its claim"
    assert store.outbox_counts() == {"sending": 1}
    assert store.outbox.record(new, DeliveryResult(DeliveryStatus.DELIVERED, ref={"channel": "C1", "ts": "2.0"}),
                               72.0, backoff=15)
    [row] = store.outbox_for_prefix("incident:1")
    assert (row.status, row.attempts, row.delivered_at) == ("delivered", 2, 72.0)


def test_an_uncertain_retry_stays_uncertain_and_keeps_its_key_in_order(store):
    with store.tx() as s:
        store.enqueue(s, "slack", MessageKind.INCIDENT, "incident:1:#a", {"v": 1}, 1.0)
        store.enqueue(s, "slack", MessageKind.INCIDENT, "incident:1:#a", {"v": 2}, 2.0)
    (c,) = claim_due(store, 10.0)
    lookup_failed = DeliveryResult(DeliveryStatus.RETRY, error="ratelimited", retry_after=30, uncertain=True)
    assert store.outbox.record(c, lookup_failed, 10.0, backoff=15)
    assert claim_due(store, 39.0) == [], "neither the row nor its key's update goes before Retry-After"
    (again,) = claim_due(store, 40.0)
    assert again.uncertain and again.message.payload == {"v": 1}
    store.outbox.record(again, DeliveryResult(DeliveryStatus.RETRY, error="500"), 40.0, backoff=15)
    (plain,) = claim_due(store, 55.0)
    assert not plain.uncertain, "a certain failure makes the row plain pending again"


def test_concurrent_claimers_take_each_row_once_and_each_key_in_order(store):
    ids: dict[int, str] = {}
    with store.tx() as s:
        for i in range(40):
            key = f"incident:{i % 10}:#a"
            ids[store.enqueue(s, "slack", MessageKind.INCIDENT, key, {"i": i}, float(i)).id] = key
    sent: list[int] = []  # in claim order: a key's next row can only be claimed once this one is recorded
    lock = threading.Lock()
    start = threading.Barrier(4)

    def sender() -> None:
        start.wait()
        while store.outbox_counts().get("pending", 0) or store.outbox_counts().get("sending", 0):
            for c in claim_due(store, 100.0):
                with lock:
                    sent.append(c.message.id)
                assert store.outbox.record(c, DeliveryResult(DeliveryStatus.DELIVERED), 100.0, backoff=15)

    threads = [threading.Thread(target=sender) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(sent) == sorted(ids), "every row sent exactly once"
    for key in set(ids.values()):
        mine = [i for i in sent if ids[i] == key]
        assert mine == sorted(mine), (key, mine)
    assert store.outbox_counts() == {"delivered": 40}


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


def test_keyed_chain_and_checkpoints_stay_valid_with_replicas_appending_at_once(store, tmp_path):
    """Replicas (a Store each, two threads each) append to one keyed log and checkpoint into
    one file: one marker, no gap, every HMAC and every checkpoint in agreement."""
    key = ChainKey(b"replica-shared-audit-key-0123456789")
    path = tmp_path / "audit.checkpoints"
    replicas = [Store(store.url) for _ in range(4)]
    for r in replicas:
        r.audit_key = key
        r.audit_listener = Checkpointer(r, AuditSettings(key, path, every_entries=5)).committed

    def writer(r: Store, n: int) -> None:
        for i in range(12):
            if i % 4 == 3:  # an entry committed with what it records, in the caller's transaction
                for _ in range(20):
                    try:
                        with r.tx() as s:
                            r.audit_in(s, f"w{n}", "rollback.requested", "model:m", {"i": i})
                        break
                    except IntegrityError:
                        time.sleep(0.01)
            else:
                r.audit(f"w{n}", "test.write", "model:m", {"i": i})

    threads = [threading.Thread(target=writer, args=(r, 2 * k + j)) for k, r in enumerate(replicas) for j in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in replicas:
        r.close()
    entries = store.audit_entries()
    assert [e.seq for e in entries] == list(range(1, 98))  # the marker, then 8 x 12
    assert [e.action for e in entries].count(KEYED_MARKER) == 1 and entries[0].action == KEYED_MARKER
    report = verify_log(store, key, path)
    assert report.ok, report.problem
    assert report.chain.keyed_from == 1 and len(report.checkpoints.lines) >= 8


def test_idempotency_key_is_stored_once(store):
    assert store.save_idempotent_response("rollback:m", "k1", "h", 200, {"status": "done"}, 1.0)
    assert not store.save_idempotent_response("rollback:m", "k1", "h", 200, {"status": "other"}, 2.0)
    assert store.idempotent_response("rollback:m", "k1").response == {"status": "done"}


def test_a_batch_that_corrects_a_label_keeps_the_last_one(store):
    """POST /v1/labels with the same prediction twice (a correction inside one batch, or 55
    and "55") was a 500 on PostgreSQL: one INSERT ... ON CONFLICT DO UPDATE may not touch a
    row twice (CardinalityViolation), so the whole batch was lost. The last one wins, as a
    label sent again in a later batch does."""
    from monitor.store.labels import Label

    batch = [Label("p1", 0.0, 10.0), Label("p2", 1.0, 10.0), Label("p1", 1.0, 20.0)]
    assert store.labels.add("churn", batch, 30.0) == 3
    got = {lb.prediction_id: (lb.label, lb.ts) for lb in store.labels.between("churn", 0.0, 100.0)}
    assert got == {"p1": (1.0, 20.0), "p2": (1.0, 10.0)}
