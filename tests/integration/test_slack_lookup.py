"""Uncertain outbox rows and Slack: a message whose sender lost track of it is looked for
in the channel's history (by the outbox id in its metadata) before it is ever posted
again, and a history that cannot be read right now delays it rather than posting blindly."""
from __future__ import annotations

import logging
import time
from typing import Any

import pytest

import alerts.slack_lookup
from alerts.outbox import DeliveryResult, DeliveryStatus, MessageKind, OutboxMessage
from alerts.slack import SlackNotifier
from monitor.cycle.deliver import OutboxSender
from monitor.metrics import VigilMetrics
from monitor.store.outbox import Claim
from monitor.store.repository import Store
from tests.fakes.slack_server import FakeSlack
from tests.unit.alerts.test_sink import incident_payload

TOKEN = "xoxb-lookup-8a2b"
T = 1_800_000_000.0
CLAIM_S = 60.0
KEY = "incident:3:#recsys-alerts"


@pytest.fixture
def slack():
    with FakeSlack(token=TOKEN, channels=("recsys-alerts",), post_rate_per_s=100, post_burst=100) as fake:
        yield fake


@pytest.fixture
def store(tmp_path):
    s = Store(f"sqlite:///{tmp_path / 'vigil.db'}")
    yield s
    s.close()


def notifier(fake: FakeSlack, **kw: Any) -> SlackNotifier:
    kw.setdefault("max_rate_limit_retries", 0)
    return SlackNotifier(TOKEN, base_url=fake.base_url, timeout_s=5.0, **kw)


def enqueue(store: Store, n: int = 1) -> list[int]:
    with store.tx() as s:
        return [store.enqueue(s, "slack", MessageKind.INCIDENT, KEY, incident_payload(updated_at=T + i), T).id
                for i in range(n)]


def crash_after_posting(store: Store, fake: FakeSlack) -> Claim:
    """A sender claims the head row, posts it, and dies before recording it."""
    (claim,) = store.outbox.claim_due(T, claim_s=CLAIM_S)
    assert notifier(fake).deliver(claim.message).status == DeliveryStatus.DELIVERED
    return claim


def sender(store: Store, fake: FakeSlack, **kw: Any) -> OutboxSender:
    return OutboxSender(store, {"slack": notifier(fake, **kw)}, VigilMetrics(), claim_s=CLAIM_S)


def test_every_post_names_its_outbox_row_and_can_be_found_by_it(slack):
    n = notifier(slack)
    msg = OutboxMessage(id=41, notifier="slack", kind=MessageKind.INCIDENT, key=KEY, payload=incident_payload(),
                        created_at=T)
    assert n.find_delivered(msg) is None, "nothing posted yet: safe to post"
    posted = n.deliver(msg)
    [message] = slack.messages()
    assert message.metadata == {"event_type": "vigil_message", "event_payload": {"outbox_key": KEY, "outbox_id": 41}}
    found = n.find_delivered(msg)
    assert found is not None and found.status == DeliveryStatus.DELIVERED and found.ref == posted.ref
    other = OutboxMessage(id=42, notifier="slack", kind=MessageKind.INCIDENT, key=KEY, payload=incident_payload())
    assert n.find_delivered(other) is None


def test_a_lapsed_claim_is_not_posted_twice_when_slack_has_the_message(store, slack):
    enqueue(store, 2)  # the open and an update of one incident in one channel
    stalled = crash_after_posting(store, slack)  # ...or stalled past its claim: same thing to the others

    assert sender(store, slack).deliver_due(T + CLAIM_S) == 2  # the lapsed claim: looked for, found; then the update
    [message] = slack.messages()
    assert message.updates == 1, "the update edited the message the stalled sender had posted"
    assert len(slack.calls("chat.postMessage")) == 1
    assert not store.outbox.record(stalled, DeliveryResult(DeliveryStatus.DELIVERED), T + CLAIM_S, 15.0), \
        "the stalled sender's late record is fenced out"
    rows = store.outbox_for_prefix("incident:3")
    assert [(r.status, r.attempts) for r in rows] == [("delivered", 2), ("delivered", 1)]


def test_a_rate_limited_history_keeps_the_row_uncertain_and_never_posts_blindly(store, slack):
    enqueue(store, 2)
    crash_after_posting(store, slack)
    slack.force(429, count=1, method="conversations.history", retry_after=30)

    assert sender(store, slack).deliver_due(T + CLAIM_S) == 0
    rows = store.outbox_for_prefix("incident:3")
    assert [r.status for r in rows] == ["sending", "pending"], "still uncertain; its update waits behind it"
    assert rows[0].next_attempt_at == T + CLAIM_S + 30, "Retry-After"
    assert "429" in (rows[0].last_error or "") and "conversations.history" in rows[0].last_error
    assert sender(store, slack).deliver_due(T + CLAIM_S + 29) == 0
    assert len(slack.calls("chat.postMessage")) == 1 and len(slack.calls("conversations.history")) == 1

    assert sender(store, slack).deliver_due(T + CLAIM_S + 30) == 2  # Slack answers again: found, then updated
    assert len(slack.calls("chat.postMessage")) == 1
    assert [m.updates for m in slack.messages()] == [1]


def test_a_post_that_timed_out_is_looked_for_before_it_is_posted_again(store, slack):
    enqueue(store)
    slack.delay(1.0)  # Slack posts it, but answers after the client gave up
    s = sender(store, slack)
    s.notifiers["slack"]._client.timeout = 0.3  # type: ignore[attr-defined]
    assert s.deliver_due(T) == 0
    [row] = store.outbox_for_prefix("incident:3")
    assert row.status == "sending" and "TimeoutError" in (row.last_error or ""), "maybe sent: uncertain"
    assert row.next_attempt_at >= T + 15, "looked for only after a back-off, by when a late post has landed"
    landed = time.monotonic() + 10
    while not slack.messages() and time.monotonic() < landed:
        time.sleep(0.05)

    assert sender(store, slack).deliver_due(row.next_attempt_at) == 1
    assert len(slack.messages()) == 1 and len(slack.calls("chat.postMessage")) == 1


def test_history_is_searched_page_by_page_from_the_row_creation_on(store, slack, monkeypatch):
    monkeypatch.setattr(alerts.slack_lookup, "PAGE", 2)
    enqueue(store)
    crash_after_posting(store, slack)
    chatter = notifier(slack)
    for i in range(5):  # later posts in the same channel push ours onto the third page
        chatter.deliver(OutboxMessage(id=100 + i, notifier="slack", kind=MessageKind.INCIDENT, key=f"other:{i}",
                                      payload=incident_payload(incident_id=100 + i)))
    assert sender(store, slack).deliver_due(T + CLAIM_S) == 1
    assert len(slack.calls("chat.postMessage")) == 6
    history = slack.calls("conversations.history")
    assert len(history) == 3 and all(r.params["include_all_metadata"] == "1" for r in history)
    assert float(history[0].params["oldest"]) < T


def test_a_rollback_reply_is_looked_for_in_its_thread(slack):
    n = notifier(slack)
    parent = n.deliver(OutboxMessage(id=1, notifier="slack", kind=MessageKind.INCIDENT, key=KEY,
                                     payload=incident_payload()))
    rollback = {"model": "recommender", "from_version": "3", "to_version": "2", "status": "done", "at": T,
                "actor": "vigil", "reason": "critical", "incident_id": 3, "channel": "#recsys-alerts",
                "thread": parent.ref}
    msg = OutboxMessage(id=2, notifier="slack", kind=MessageKind.ROLLBACK, key="rollback:recommender:1",
                        payload=rollback, created_at=T)
    assert n.find_delivered(msg) is None
    assert n.deliver(msg).status == DeliveryStatus.DELIVERED
    found = n.find_delivered(msg)
    assert found is not None and found.status == DeliveryStatus.DELIVERED
    assert found.detail["found_in_history"]["ts"] != parent.ref["ts"]
    assert len(slack.calls("conversations.replies")) == 2


def test_without_the_history_scope_an_uncertain_row_is_posted_again_and_says_why(store, caplog):
    with FakeSlack(token=TOKEN, channels=("recsys-alerts",), scopes=("chat:write",)) as narrow:
        enqueue(store)
        crash_after_posting(store, narrow)
        with caplog.at_level(logging.WARNING, logger="vigil.sender"):
            assert sender(store, narrow).deliver_due(T + CLAIM_S) == 1
        # A lost alert is worse than a second copy; the log names the scope to add.
        assert len(narrow.messages()) == 2
    assert any("channels:read" in str(getattr(r, "error", "")) for r in caplog.records)


def drain_until_posted_again(store: Store, fake: FakeSlack, posts: int) -> list[str]:
    """Run the sender at each due time until a second post; the row's errors on the way."""
    errors, now = [], T + CLAIM_S
    for _ in range(8):
        sender(store, fake).deliver_due(now)
        (row,) = store.outbox_for_prefix("incident:3")
        errors.append(row.last_error or "")
        if len(fake.calls("chat.postMessage")) > posts:
            break
        now = row.next_attempt_at
    return errors


def test_a_post_beyond_the_pages_searched_is_waited_for_then_sent_again_saying_so(store, slack, monkeypatch,
                                                                                  caplog):
    monkeypatch.setattr(alerts.slack_lookup, "PAGE", 2)
    monkeypatch.setattr(alerts.slack_lookup, "MAX_PAGES", 2)
    enqueue(store)
    crash_after_posting(store, slack)
    chatter = notifier(slack)
    for i in range(5):  # a busy channel: ours is on page 3, past the 2 pages searched
        chatter.deliver(OutboxMessage(id=100 + i, notifier="slack", kind=MessageKind.INCIDENT, key=f"other:{i}",
                                      payload=incident_payload(incident_id=100 + i)))
    assert sender(store, slack).deliver_due(T + CLAIM_S) == 0, "not searched everywhere: not 'not posted'"
    (row,) = store.outbox_for_prefix("incident:3")
    assert row.status == "sending" and "cannot tell" in (row.last_error or "")
    assert len(slack.calls("chat.postMessage")) == 6, "no second copy yet"

    with caplog.at_level(logging.WARNING, logger="vigil.sender"):
        errors = drain_until_posted_again(store, slack, posts=6)
    assert len(slack.calls("chat.postMessage")) == 7, "never dropped: sent again after a few looks"
    assert all("looking again" in e for e in errors[:-1])
    looks = alerts.slack_lookup.CANNOT_TELL_ATTEMPTS + 1  # each of 2 pages
    assert len(slack.calls("conversations.history")) == 2 * looks
    assert any("a duplicate is possible" in str(getattr(r, "error", "")) for r in caplog.records)
    (row,) = store.outbox_for_prefix("incident:3")
    assert row.status == "delivered"


def test_a_channel_past_the_listed_pages_is_not_taken_for_no_such_channel(store, monkeypatch):
    monkeypatch.setattr(alerts.slack_lookup, "LIST_PAGE", 2)
    monkeypatch.setattr(alerts.slack_lookup, "MAX_PAGES", 2)
    with FakeSlack(token=TOKEN, channels=("a", "b", "c", "d", "recsys-alerts")) as big:
        enqueue(store)
        crash_after_posting(store, big)
        assert sender(store, big).deliver_due(T + CLAIM_S) == 0
        (row,) = store.outbox_for_prefix("incident:3")
        assert row.status == "sending" and "conversations.list" in (row.last_error or "")
        assert len(big.messages()) == 1, "not posted twice on a guess"


def test_a_posted_channel_is_looked_up_by_the_id_slack_answered(slack):
    n = notifier(slack)
    msg = OutboxMessage(id=41, notifier="slack", kind=MessageKind.INCIDENT, key=KEY, payload=incident_payload(),
                        created_at=T)
    n.deliver(msg)
    assert n.find_delivered(msg) is not None
    assert not slack.calls("conversations.list"), "the post's answer named the channel's ID"


def test_a_slow_lookup_ends_within_the_send_budget_and_keeps_the_row(store, slack, monkeypatch):
    import alerts.slack
    from monitor.store.outbox import CLAIM_S as OUTBOX_CLAIM_S

    assert getattr(alerts.slack, "SEND_BUDGET_S", 0) < OUTBOX_CLAIM_S, "a send ends before its claim lapses"
    monkeypatch.setattr(alerts.slack, "SEND_BUDGET_S", 1.5, raising=False)
    monkeypatch.setattr(alerts.slack_lookup, "PAGE", 1)
    enqueue(store)
    crash_after_posting(store, slack)
    chatter = notifier(slack)
    for i in range(8):  # ours is on the ninth page of history
        chatter.deliver(OutboxMessage(id=100 + i, notifier="slack", kind=MessageKind.INCIDENT, key=f"other:{i}",
                                      payload=incident_payload(incident_id=100 + i)))
    slack.delay(0.5, count=20)  # every answer slow: 9 pages take 4.5 s
    started = time.monotonic()
    assert sender(store, slack).deliver_due(T + CLAIM_S) == 0
    assert time.monotonic() - started < 1.5 + 1.0, "stopped at its budget"
    (row,) = store.outbox_for_prefix("incident:3")
    assert row.status == "sending", "still uncertain: looked for again later, never posted blindly"
    assert len(slack.calls("chat.postMessage")) == 9
