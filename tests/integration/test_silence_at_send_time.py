"""A silence checked again when a message is sent (Alertmanager mutes at its notify stage):
a reminder, an escalation or a first page the cycle queued before the silence was made is
not sent after the silence answered. The row is kept as `suppressed`, naming the silence,
so `vigil outbox list` and the API say why it never went out. A resolve still goes out."""
from __future__ import annotations

import hashlib

import pytest
from fastapi.testclient import TestClient

from alerts.outbox import MessageKind, OutboxStatus
from alerts.slack import SlackNotifier
from monitor import silence_ops
from monitor.api.app import create_app
from monitor.silence_ops import SilenceAsk
from monitor.vigil import Vigil
from tests.fakes.slack_server import FakeSlack
from tests.helpers_vigil import MODEL, ONCALL, OWNER, T0, incident_prometheus, make_config, make_vigil

pytestmark = pytest.mark.integration
TOKEN = "xoxb-silence-send-test"
VIEWER = "vera-viewer-token-2c8f41"
POLICY = {"slo_consecutive_cycles": 2, "resolve_after_cycles": 2, "repeat_interval": "5m"}


@pytest.fixture
def slack():
    with FakeSlack(token=TOKEN, channels=(OWNER.lstrip("#"), ONCALL.lstrip("#"))) as fake:
        yield fake


def vigil_on(tmp_path, fake: FakeSlack, bad_until: float | None = None) -> Vigil:
    cfg = make_config(tmp_path, policy=POLICY, api={"tokens": [
        {"name": "vera", "role": "viewer", "token_sha256": hashlib.sha256(VIEWER.encode()).hexdigest()}]})
    notifier = SlackNotifier(TOKEN, base_url=fake.base_url, max_rate_limit_retries=0, timeout_s=5.0)
    prom = incident_prometheus() if bad_until is None else incident_prometheus(bad_until=bad_until)
    return make_vigil(cfg, prometheus=prom, notifiers={"slack": notifier})


def drain(vigil: Vigil, t: float) -> None:
    for _ in range(5):
        if vigil.deliver(t) == 0:
            break


def silence(vigil: Vigil, t: float) -> int:
    made = silence_ops.create(vigil.store, SilenceAsk([f'model="{MODEL}"'], "OPS-42", "olga", duration="1h"),
                              "api:olga", t)
    assert made.id is not None
    return made.id


def replies(fake: FakeSlack) -> list[str]:
    return [m.text for m in fake.messages() if m.thread_ts]


def test_a_reminder_queued_before_the_silence_is_suppressed_and_the_resolve_still_goes_out(tmp_path, slack):
    vigil = vigil_on(tmp_path, slack, bad_until=T0 + 420)
    for k in range(6):
        vigil.run_cycle(MODEL, T0 + 60 * k)
        drain(vigil, T0 + 60 * k)
    (row,) = vigil.store.incidents()
    before = replies(slack)
    assert vigil.run_cycle(MODEL, T0 + 360).step == "repeat"  # queued, not yet sent
    sid = silence(vigil, T0 + 365)  # answered: the user expects no more pings
    drain(vigil, T0 + 370)
    assert replies(slack) == before, "the reminder queued before the silence pinged people after it"
    held = [r for r in vigil.store.outbox_for_prefix(f"incident:{row.id}")
            if r.kind == MessageKind.REPLY and r.payload.get("change") == "repeated"]
    assert held, "no reminder was queued"
    for r in held:  # one per channel told
        assert r.status == OutboxStatus.SUPPRESSED and r.delivered_at is None
        assert f"silence {sid}" in (r.last_error or "")
    assert vigil.store.outbox_counts().get("suppressed") == len(held)  # GET /readyz's outbox counts
    (b,) = vigil.store.outbox.backlog()
    assert b.suppressed == len(held) and b.open == 0
    steps = []
    for t in (T0 + 480, T0 + 540, T0 + 600, T0 + 660):  # back to normal: resolved under the silence
        steps.append(vigil.run_cycle(MODEL, t).step)
        drain(vigil, t)
    assert "resolve" in steps
    assert any("resolved" in text for text in replies(slack)[len(before):]), "the resolve was held back"


def test_a_first_page_queued_before_the_silence_is_suppressed_and_pages_once_it_ends(tmp_path, slack):
    vigil = vigil_on(tmp_path, slack)
    assert vigil.run_cycle(MODEL, T0).step == "open"  # queued, not yet sent
    sid = silence(vigil, T0 + 5)
    drain(vigil, T0 + 10)
    assert slack.messages() == [], "the first page went out after the silence answered"
    (row,) = vigil.store.incidents()
    rows = vigil.store.outbox_for_prefix(f"incident:{row.id}:{OWNER}")
    assert [r.status for r in rows] == [OutboxStatus.SUPPRESSED]
    assert f"silence {sid}" in (rows[0].last_error or "")
    got = TestClient(create_app(vigil)).get(f"/v1/incidents/{row.id}", headers={"Authorization": f"Bearer {VIEWER}"})
    assert got.status_code == 200
    assert {(m["key"], m["kind"]) for m in got.json()["suppressed"]} >= {(f"incident:{row.id}:{OWNER}", "incident")}
    assert all(f"silence {sid}" in m["why"] for m in got.json()["suppressed"])
    vigil.run_cycle(MODEL, T0 + 60)  # still silenced: nothing more
    drain(vigil, T0 + 60)
    assert slack.messages() == []
    silence_ops.expire(vigil.store, sid, "api:olga", T0 + 100)
    vigil.run_cycle(MODEL, T0 + 120)  # the silence ended: what is still wrong pages, as if muted all along
    drain(vigil, T0 + 120)
    assert [m for m in slack.messages(OWNER) if not m.thread_ts], "nobody was paged once the silence ended"


def test_an_escalation_held_back_at_send_time_is_told_as_one_when_the_silence_ends(tmp_path, slack):
    vigil = vigil_on(tmp_path, slack)
    for t in (T0, T0 + 60, T0 + 120):
        step = vigil.run_cycle(MODEL, t).step
        if step == "update":
            break
        drain(vigil, t)
    assert step == "update"  # the escalation to critical is queued, not yet sent
    before = replies(slack)
    sid = silence(vigil, t + 5)
    drain(vigil, t + 10)
    assert replies(slack) == before, "the escalation queued before the silence pinged people after it"
    assert not [m for m in slack.messages(ONCALL) if not m.thread_ts], "the on-call was paged under the silence"
    silence_ops.expire(vigil.store, sid, "api:olga", t + 30)
    vigil.run_cycle(MODEL, t + 60)  # the silence ended: the escalation is news, told as one
    drain(vigil, t + 60)
    assert any("escalated" in text for text in replies(slack)[len(before):]), "the escalation was never told"
    assert [m for m in slack.messages(ONCALL) if not m.thread_ts], "the on-call was never paged"


def test_the_incidents_own_silence_holds_the_first_page_queued_before_it(tmp_path, slack):
    vigil = vigil_on(tmp_path, slack)
    assert vigil.run_cycle(MODEL, T0).step == "open"  # queued, not yet sent
    vigil.operator.silence(1, "api:olga", 600.0, "known, OPS-43", T0 + 5)  # POST /v1/incidents/1/silence
    drain(vigil, T0 + 10)
    assert slack.messages() == [], "the incident's own silence let its queued first page out"
    (row,) = vigil.store.outbox_for_prefix(f"incident:1:{OWNER}")
    assert row.status == OutboxStatus.SUPPRESSED and "silenced until" in (row.last_error or "")
    vigil.run_cycle(MODEL, T0 + 660)  # its silence ended: what is still wrong pages
    drain(vigil, T0 + 660)
    assert [m for m in slack.messages(OWNER) if not m.thread_ts], "nobody was paged once its silence ended"


def test_a_shared_cause_message_queued_before_its_silence_is_held_and_posts_once_it_ends(tmp_path):
    """The shared cause's first message in each channel (keys `group:<id>:<channel>`), queued
    before a silence of the shared cause, is held back; it posts once the silence ends."""
    from tests.integration.test_shared_cause import RANKING, config, prometheus, registry

    with FakeSlack(token=TOKEN, channels=(OWNER.lstrip("#"), ONCALL.lstrip("#"), RANKING.lstrip("#"))) as fake:
        notifier = SlackNotifier(TOKEN, base_url=fake.base_url, max_rate_limit_retries=0, timeout_s=5.0)
        vigil = make_vigil(config(tmp_path), prometheus=prometheus(), registry=registry(),
                           notifiers={"slack": notifier})
        for t in (T0, T0 + 60):  # the group waits group_wait, then queues its messages
            for m in ("recommender", "ranker"):
                vigil.run_cycle(m, t)
            if t == T0:
                drain(vigil, t)
        assert [r for r in vigil.store.outbox_for_prefix("group:1") if r.status == OutboxStatus.PENDING]
        made = silence_ops.create(vigil.store, SilenceAsk(['alertname="SharedCause"'], "GPU swap OPS-12", "olga",
                                                          duration="1h"), "api:olga", T0 + 65)
        drain(vigil, T0 + 70)
        assert fake.messages() == [], "the shared cause posted after its silence answered"
        held = vigil.store.outbox_for_prefix("group:1")
        assert held and all(r.status == OutboxStatus.SUPPRESSED and f"silence {made.id}" in (r.last_error or "")
                            for r in held)
        assert made.id is not None
        silence_ops.expire(vigil.store, made.id, "api:olga", T0 + 100)
        for t in (T0 + 120, T0 + 180):
            for m in ("recommender", "ranker"):
                vigil.run_cycle(m, t)
            drain(vigil, t)
        assert "2 models share one cause" in " ".join(m.text for m in fake.messages(OWNER)), \
            "the shared cause never posted once its silence ended"
