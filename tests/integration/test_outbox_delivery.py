"""Incidents opened by real cycles, delivered through the outbox to a local Slack.

What an on-call person would see in Slack: one message per incident and channel,
edited in place as the incident escalates and resolves; nothing lost to a Slack
outage or a crash; a misconfigured channel surfaced, not retried forever.
"""
from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from alerts.outbox import MessageKind
from alerts.sink import JsonlSink
from alerts.slack import SlackNotifier
from monitor.notifiers import default_notifiers
from monitor.store.repository import OutboxRow, Store
from monitor.vigil import Vigil
from tests.fakes.slack_server import FakeMessage, FakeSlack
from tests.helpers_vigil import (
    MODEL,
    ONCALL,
    OWNER,
    T0,
    incident_prometheus,
    make_config,
    make_vigil,
    metric_value,
    model_config,
)

TOKEN = "xoxb-outbox-test-5d1e"


@pytest.fixture
def slack():
    with FakeSlack(token=TOKEN, channels=(OWNER.lstrip("#"), ONCALL.lstrip("#"))) as fake:
        yield fake


def slack_vigil(tmp_path, fake: FakeSlack, *, retries: int = 0, **kw: Any) -> Vigil:
    cfg = make_config(tmp_path, **kw)
    notifier = SlackNotifier(TOKEN, base_url=fake.base_url, max_rate_limit_retries=retries, timeout_s=5.0)
    return make_vigil(cfg, prometheus=incident_prometheus(bad_until=T0 + 120), notifiers={"slack": notifier})


def severity_line(version: dict[str, Any]) -> str:
    """The context line under the header: model, incident #, SEVERITY, times."""
    return version["blocks"][1]["elements"][0]["text"]


def header(version: dict[str, Any]) -> str:
    return version["blocks"][0]["text"]["text"]


def drain(vigil: Vigil, now: float, rounds: int = 10) -> int:
    """Deliver until nothing more is due (one message per key goes out per round)."""
    total = 0
    for _ in range(rounds):
        n = vigil.deliver(now)
        total += n
        if n == 0:
            break
    return total


def outbox(vigil: Vigil) -> list[OutboxRow]:
    return vigil.store.outbox_for_prefix("incident:1")


def parents(messages: list[FakeMessage]) -> list[FakeMessage]:
    """The channel's own messages, not the replies in their threads."""
    return [m for m in messages if not m.thread_ts]


def only(messages: list[FakeMessage]) -> FakeMessage:
    assert len(messages) == 1, [m.text for m in messages]
    return messages[0]


# ----------------------------------------------------------------------------- the happy path
def test_one_message_per_channel_updated_in_place_through_escalation_and_resolve(tmp_path, slack):
    vigil = slack_vigil(tmp_path, slack)

    assert vigil.run_cycle(MODEL, T0).step == "open"  # CTR -10 %: a warning for the owner
    assert drain(vigil, T0) == 1
    owner = only(slack.messages(OWNER))
    assert "WARNING" in severity_line(owner.versions[0])
    assert slack.messages(ONCALL) == [], "a warning does not page on-call"

    assert vigil.run_cycle(MODEL, T0 + 60).step == "update"  # p99 SLO breached twice: critical
    drain(vigil, T0 + 60)
    assert vigil.run_cycle(MODEL, T0 + 120).step == "unchanged"  # same story: no new message
    drain(vigil, T0 + 120)
    oncall = only(parents(slack.messages(ONCALL)))
    assert "CRITICAL" in severity_line(oncall.versions[-1])

    for t in (T0 + 720, T0 + 780):  # signals back to normal for two cycles: resolved
        vigil.run_cycle(MODEL, t)
        drain(vigil, t)

    owner = only(parents(slack.messages(OWNER)))
    assert [("WARNING" in severity_line(v), "CRITICAL" in severity_line(v)) for v in owner.versions] == [
        (True, False), (False, True), (False, True)]
    assert header(owner.versions[-1]).split(" ", 1)[1].startswith("Resolved: ")
    assert not [b for b in owner.blocks if b["type"] == "actions"], "a resolved incident has no buttons"
    assert only(parents(slack.messages(ONCALL))).updates == 1  # critical, then resolved
    # one post per channel, ever; the rest are replies in their threads (escalated, resolved; resolved)
    posts = slack.calls("chat.postMessage")
    assert len([r for r in posts if not r.params.get("thread_ts")]) == 2
    assert sorted(r.params["thread_ts"] for r in posts if r.params.get("thread_ts")) == sorted(
        [owner.ts, owner.ts, oncall.ts])
    assert {r.params["ts"] for r in slack.calls("chat.update")} == {owner.ts, oncall.ts}
    assert all(r.status == "delivered" for r in outbox(vigil))
    assert metric_value(vigil, "vigil_notifications_total", notifier="slack", status="delivered") == 8


# ----------------------------------------------------------------------------- outages
def test_slack_outage_keeps_messages_pending_then_delivers_them_in_order(tmp_path, slack):
    vigil = slack_vigil(tmp_path, slack)
    slack.force(500, count=3)  # the next three requests fail: the whole outage

    vigil.run_cycle(MODEL, T0)
    assert vigil.deliver(T0) == 0
    [first] = outbox(vigil)
    assert (first.status, first.attempts) == ("pending", 1)
    assert "500" in first.last_error
    assert first.next_attempt_at > T0, "a failed message backs off"

    # escalation during the outage: an update and its threaded reply + an on-call page
    vigil.run_cycle(MODEL, T0 + 60)
    assert vigil.deliver(T0 + 60) == 0  # the retried open and the on-call page both hit the outage
    rows = outbox(vigil)
    assert [r.status for r in rows] == ["pending"] * 4
    assert vigil.deliver(T0 + 61) == 0, "nothing is due while backing off"
    assert len(slack.calls(status=500)) == 3
    assert metric_value(vigil, "vigil_outbox_pending") == 4

    # Slack is back. The owner's update must not overtake the open it updates, nor the reply its parent.
    assert drain(vigil, T0 + 3600) == 4
    owner = only(parents(slack.messages(OWNER)))
    assert ["CRITICAL" in severity_line(v) for v in owner.versions] == [False, True]
    assert len(slack.thread(OWNER, owner.ts)) == 1
    assert only(parents(slack.messages(ONCALL))).updates == 0
    assert [r.status for r in outbox(vigil)] == ["delivered"] * 4
    assert metric_value(vigil, "vigil_outbox_pending") == 0


def test_rate_limit_beyond_retries_waits_for_slack_retry_after(tmp_path, slack):
    vigil = slack_vigil(tmp_path, slack, retries=0)
    vigil.run_cycle(MODEL, T0)
    slack.force(429, count=1, retry_after=42)
    assert vigil.deliver(T0) == 0
    [row] = outbox(vigil)
    assert row.status == "pending" and row.attempts == 1
    assert row.next_attempt_at == pytest.approx(T0 + 42), "Retry-After, not the default backoff"
    assert "429" in row.last_error

    assert vigil.deliver(T0 + 41) == 0
    assert len(slack.calls()) == 1, "not retried before Retry-After"
    assert vigil.deliver(T0 + 42) == 1
    assert len(slack.messages(OWNER)) == 1


def test_unknown_channel_fails_once_names_the_channel_and_shows_in_metrics(tmp_path, slack):
    vigil = slack_vigil(tmp_path, slack, models=[model_config(owner_channel="#recsys-typo")])
    vigil.run_cycle(MODEL, T0)
    assert vigil.deliver(T0) == 0
    [row] = outbox(vigil)
    assert row.status == "failed"
    assert "channel_not_found" in row.last_error and "#recsys-typo" in row.last_error
    assert metric_value(vigil, "vigil_notifications_total", notifier="slack", status="failed") == 1
    assert vigil.store.outbox_counts() == {"failed": 1}

    requests = len(slack.calls())
    assert vigil.deliver(T0 + 86400) == 0
    assert len(slack.calls()) == requests, "a permanent failure is not retried"
    assert metric_value(vigil, "vigil_notifications_total", notifier="slack", status="failed") == 1


def test_concurrent_delivery_rounds_post_a_message_once(tmp_path, slack):
    """The API (after a rollback) and the daemon's sender thread both drain the outbox."""
    vigil = slack_vigil(tmp_path, slack)
    vigil.run_cycle(MODEL, T0)
    slack.delay(0.5, count=2)  # the first round is still talking to Slack when the second starts
    rounds = [threading.Thread(target=vigil.deliver, args=(T0,)) for _ in range(2)]
    for r in rounds:
        r.start()
    for r in rounds:
        r.join(timeout=10)
    assert len(slack.calls("chat.postMessage")) == 1
    assert len(slack.messages(OWNER)) == 1


# ----------------------------------------------------------------------------- crash safety
def test_outbox_row_commits_with_the_incident_and_survives_a_restart(tmp_path, slack):
    cfg = make_config(tmp_path)
    notifier = SlackNotifier(TOKEN, base_url=slack.base_url, max_rate_limit_retries=0)
    first = make_vigil(cfg, prometheus=incident_prometheus(), notifiers={"slack": notifier})
    report = first.run_cycle(MODEL, T0)
    first.store.close()  # the process dies before its sender ran
    assert slack.requests == []

    second = make_vigil(cfg, prometheus=incident_prometheus(), notifiers={"slack": notifier})
    assert second.deliver(T0 + 5) == 1
    posted = only(slack.messages(OWNER))
    assert f"incident #{report.incident_id}" in severity_line(posted.versions[0])


def test_an_incident_is_not_stored_without_its_notification(tmp_path, slack, monkeypatch):
    """If the outbox write fails, the incident change rolls back with it: the next cycle
    opens (and announces) it again instead of keeping a silent open incident."""
    vigil = slack_vigil(tmp_path, slack)

    def broken_enqueue(*_: Any, **__: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(vigil.store, "enqueue", broken_enqueue)
    with pytest.raises(OSError):
        vigil.run_cycle(MODEL, T0)
    assert vigil.store.all_incidents() == []

    monkeypatch.undo()
    assert vigil.run_cycle(MODEL, T0 + 60).step == "open"
    assert drain(vigil, T0 + 60) == 1
    assert len(slack.messages(OWNER)) == 1


# ----------------------------------------------------------------------------- no token
def test_without_a_slack_token_notifications_go_to_the_jsonl_sink(tmp_path, monkeypatch):
    monkeypatch.delenv("VIGIL_NO_SUCH_TOKEN", raising=False)
    cfg = make_config(tmp_path, slack={"bot_token": "${VIGIL_NO_SUCH_TOKEN:-}", "sink_path": "out/alerts.jsonl"})
    notifiers = default_notifiers(cfg)
    assert list(notifiers) == ["sink"] and isinstance(notifiers["sink"], JsonlSink)
    notifiers["sink"].console = False
    vigil = make_vigil(cfg, prometheus=incident_prometheus(), notifiers=notifiers)

    report = vigil.run_cycle(MODEL, T0)
    assert vigil.deliver(T0) == 1
    [line] = (tmp_path / "out" / "alerts.jsonl").read_text().splitlines()
    record = json.loads(line)
    assert record["key"] == f"incident:{report.incident_id}:{OWNER}"
    assert record["kind"] == str(MessageKind.INCIDENT)
    assert record["payload"]["severity"] == "warning" and record["payload"]["model"] == MODEL
    ctr = [f for f in record["payload"]["findings"] if f["entity"] == "ctr"][0]
    assert ctr["value"] == pytest.approx(-10.0) and ctr["threshold"] == -5.0  # the number next to the limit
    assert [r.status for r in Store(cfg.store.url).outbox_for_prefix(f"incident:{report.incident_id}")] == [
        "delivered"]
