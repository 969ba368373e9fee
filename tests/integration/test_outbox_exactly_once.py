"""People see each message once: real senders in processes of their own.

- A sender killed (SIGKILL, at the `after_notifier_call` fail point) after the notifier
  wrote a message and before its outbox row was marked: a fresh sender finishes the
  outbox, and the sink file / the Slack channel holds exactly one message per row.
- Two senders draining one store at once (SQLite, and a real PostgreSQL): every row is
  delivered exactly once, and each key's rows in order.
- Grafana annotations need no lookup of their own: a retried create already looks for
  the annotation carrying the event key's tag (dashboards/annotations.py), and a row
  taken over from a dead sender is a retry.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from alerts.outbox import MessageKind
from dashboards.grafana_api import GrafanaClient
from monitor.cycle.deliver import OutboxSender
from monitor.grafana.annotations import GrafanaAnnotationNotifier
from monitor.metrics import VigilMetrics
from monitor.store.repository import Store
from tests.fakes.grafana_server import FakeGrafana
from tests.fakes.slack_server import FakeSlack
from tests.helpers_replicas import sqlite_or_postgres_url
from tests.unit.alerts.test_sink import incident_payload

ROOT = Path(__file__).resolve().parents[2]
T = 1_800_000_000.0
CLAIM_S = 60.0
TOKEN = "xoxb-exactly-once-1c9d"


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return sqlite_or_postgres_url(request.param, tmp_path, lambda: request.getfixturevalue("postgres_url"))


def sender(url: str, now: float, *notifier: str, failpoints: str | None = None,
           start: tuple[Path, Path] | None = None) -> subprocess.Popen[str]:
    """`python -m tests.outbox_sender_proc` on the store; `notifier` is ("--sink", path) or Slack's."""
    env = {k: v for k, v in os.environ.items() if k != "VIGIL_FAILPOINTS"}
    if failpoints:
        env["VIGIL_FAILPOINTS"] = failpoints
    cmd = [sys.executable, "-m", "tests.outbox_sender_proc", "--store", url, "--now", str(now),
           "--claim-s", str(CLAIM_S), *notifier]
    if start:  # (ready file, go file)
        cmd += ["--ready", str(start[0]), "--go", str(start[1])]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen[str]) -> int:
    _, err = proc.communicate(timeout=120)
    assert proc.returncode in (0, -signal.SIGKILL), err[-3000:]
    return proc.returncode


def enqueue(url: str, notifier: str, rows: list[tuple[str, dict[str, Any]]]) -> dict[int, str]:
    """Outbox rows as a cycle writes them; {id: key}."""
    store = Store(url)
    with store.tx() as s:
        ids = {store.enqueue(s, notifier, MessageKind.INCIDENT, key, payload, T).id: key for key, payload in rows}
    store.close()
    return ids


def updates(channel: str, n: int = 2) -> list[tuple[str, dict[str, Any]]]:
    """An incident's open and its later updates, for one channel."""
    return [(f"incident:3:{channel}", incident_payload(channel=channel, updated_at=T + i)) for i in range(n)]


def sink_lines(*paths: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for p in paths if p.exists() for line in p.read_text().splitlines()]


def statuses(url: str) -> dict[str, int]:
    store = Store(url)
    try:
        return store.outbox_counts()
    finally:
        store.close()


# ----------------------------------------------------------------------------- a crash
def test_a_sender_killed_between_the_sink_write_and_its_record_repeats_nothing(store_url, tmp_path):
    ids = enqueue(store_url, "sink", updates("#a") + updates("#b"))
    sink = tmp_path / "notifications.jsonl"

    first = sender(store_url, T, "--sink", str(sink), failpoints="after_notifier_call=kill@2")
    assert finish(first) == -signal.SIGKILL, "the fail point killed the sender"
    assert len(sink_lines(sink)) == 2 and statuses(store_url) == {"delivered": 1, "sending": 1, "pending": 2}

    second = sender(store_url, T + CLAIM_S + 1, "--sink", str(sink))  # after the dead sender's claim lapsed
    assert finish(second) == 0
    lines = sink_lines(sink)
    assert sorted(line["id"] for line in lines) == sorted(ids), "one line per outbox row: none twice, none lost"
    for key in set(ids.values()):
        mine = [line["id"] for line in lines if line["key"] == key]
        assert mine == sorted(mine), f"{key} in order"
    assert statuses(store_url) == {"delivered": 4}


def test_a_sender_killed_after_posting_to_slack_does_not_post_again(store_url):
    with FakeSlack(token=TOKEN, channels=("recsys-alerts", "ml-oncall")) as slack:
        enqueue(store_url, "slack", updates("#recsys-alerts") + updates("#ml-oncall"))
        args = ("--slack", slack.base_url, "--token", TOKEN)

        assert finish(sender(store_url, T, *args, failpoints="after_notifier_call=kill@2")) == -signal.SIGKILL
        assert len(slack.messages()) == 2, "both opens were posted, the second one not recorded"
        assert finish(sender(store_url, T + CLAIM_S + 1, *args)) == 0

        for channel in ("recsys-alerts", "ml-oncall"):
            [message] = slack.messages(channel)  # one message per incident and channel...
            assert message.updates == 1  # ...edited in place by the update that followed
            assert message.metadata["event_type"] == "vigil_message"
        assert len(slack.calls("chat.postMessage")) == 2
        assert len(slack.calls("conversations.history")) == 1, "only the uncertain row was looked for"
    assert statuses(store_url) == {"delivered": 4}


# ----------------------------------------------------------------------------- two senders
def test_two_senders_on_one_store_deliver_every_row_once_and_in_order(store_url, tmp_path):
    rows = [row for ch in ("#a", "#b", "#c", "#d", "#e", "#f") for row in updates(ch, 5)]
    ids = enqueue(store_url, "sink", rows)
    go = tmp_path / "go"
    sinks = [tmp_path / "sender-a.jsonl", tmp_path / "sender-b.jsonl"]
    ready = [tmp_path / "ready-a", tmp_path / "ready-b"]
    # A short pause before each call keeps both senders busy at once.
    procs = [sender(store_url, T, "--sink", str(path), failpoints="before_notifier_call=sleep:0.01", start=(r, go))
             for path, r in zip(sinks, ready, strict=True)]
    deadline = time.monotonic() + 60
    while not all(r.exists() for r in ready) and time.monotonic() < deadline:
        time.sleep(0.02)  # both have imported everything
    go.touch()
    assert [finish(p) for p in procs] == [0, 0]

    lines = sink_lines(*sinks)
    assert sorted(line["id"] for line in lines) == sorted(ids), "every row exactly once across both senders"
    assert all(sink_lines(path) for path in sinks), "both senders took part"
    for key in set(ids.values()):
        mine = sorted((line["delivered_at"], line["id"]) for line in lines if line["key"] == key)
        assert [i for _, i in mine] == sorted(i for _, i in mine), f"{key} in order"
    assert statuses(store_url) == {"delivered": len(ids)}


def test_an_annotation_created_by_a_dead_sender_is_found_by_its_key_tag_not_created_again(tmp_path):
    url = f"sqlite:///{tmp_path / 'vigil.db'}"
    payload = {"incident_id": 42, "model": "recommender", "severity": "critical", "status": "open",
               "title": "CTR dropped", "opened_at": T - 600, "resolved_at": None}
    with FakeGrafana(tokens={"t": "admin"}) as grafana:
        notifier = GrafanaAnnotationNotifier(GrafanaClient(grafana.url, "t", timeout_s=2.0, retries=0))
        store = Store(url)
        with store.tx() as s:
            store.enqueue(s, "grafana", MessageKind.INCIDENT, "incident:42", payload, T)
            store.enqueue(s, "grafana", MessageKind.INCIDENT, "incident:42",
                          {**payload, "status": "resolved", "resolved_at": T + 60}, T + 60)
        (claim,) = store.outbox.claim_due(T, claim_s=CLAIM_S)
        notifier.deliver(claim.message)  # created; the sender dies before recording it

        assert OutboxSender(store, {"grafana": notifier}, VigilMetrics()).deliver_due(T + CLAIM_S + 60) == 2
        [annotation] = grafana.annotations.values()
        assert annotation["timeEnd"] == int((T + 60) * 1000), "the resolve patched the one region"
        assert store.outbox_counts() == {"delivered": 2}
        store.close()


# ----------------------------------------------------------------------------- a paused sender
def test_a_sender_paused_past_its_claim_leaves_the_message_to_the_one_that_took_it_over(store_url, monkeypatch):
    """A replica stopped (SIGSTOP, a paused VM) after claiming a row and before calling Slack,
    for longer than the claim: another replica takes the row over as uncertain, finds nothing
    in the channel and posts it. The paused one, resumed, posted it again: a second page."""
    from alerts.slack import SlackNotifier
    from monitor import failpoints

    with FakeSlack(token=TOKEN, channels=("recsys-alerts",)) as slack:
        enqueue(store_url, "slack", updates("#recsys-alerts", 1))
        stores = [Store(store_url), Store(store_url)]
        paused, other = (OutboxSender(s, {"slack": SlackNotifier(TOKEN, base_url=slack.base_url, timeout_s=5.0)},
                                      VigilMetrics(), claim_s=1.0) for s in stores)
        failpoints.reset()
        monkeypatch.setenv(failpoints.ENV, "before_notifier_call=sleep:3@1")  # the first sender to claim stalls
        thread = threading.Thread(target=paused.deliver_due, args=(T,), kwargs={"database_clock": True})
        thread.start()
        deadline = time.monotonic() + 10
        while statuses(store_url).get("sending") != 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(1.5)  # its claim (1 s, by the database's clock) has lapsed
        assert other.deliver_due(T, database_clock=True) == 1, "the other replica took the row over and sent it"
        thread.join(timeout=30)

        assert len(slack.messages("recsys-alerts")) == 1, "one page, not one per replica"
        assert len(slack.calls("chat.postMessage")) == 1
        assert statuses(store_url) == {"delivered": 1}
        for s in stores:
            s.close()
