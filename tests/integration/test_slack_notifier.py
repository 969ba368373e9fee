"""SlackNotifier against the local Slack Web API server: what a channel would see."""
from __future__ import annotations

import logging
import socket
import time
from typing import Any

import pytest

from alerts.outbox import DeliveryStatus, MessageKind, OutboxMessage
from alerts.slack import SlackNotifier

try:
    from tests.fakes.slack_server import FakeSlack
except ImportError:  # pytest put tests/ on sys.path, not the repo root
    from fakes.slack_server import FakeSlack

TOKEN = "xoxb-test-token-7f3a"
NOW = 1_795_259_999.0


def incident(incident_id: int = 42, **over: Any) -> dict[str, Any]:
    p: dict[str, Any] = {
        "incident_id": incident_id,
        "model": "recommender",
        "severity": "critical",
        "status": "open",
        "title": "recommender: CTR down 7.2% after deploy v3",
        "channel": "#recsys-alerts",
        "opened_at": NOW - 600,
        "updated_at": NOW,
        "resolved_at": None,
        "acknowledged_by": None,
        "findings": [
            {"kind": "kpi_drop", "entity": "ctr", "value": -7.2, "threshold": -5.0, "baseline": 0.031,
             "statistic": "kpi_change_pct", "window_start": NOW - 3600, "window_end": NOW, "onset": NOW - 900,
             "score": 0.9},
            {"kind": "feature_drift", "entity": "user_age", "value": 0.31, "threshold": 0.2, "statistic": "psi",
             "window_start": NOW - 3600, "window_end": NOW, "onset": NOW - 900, "score": 0.7},
        ],
        "causes": [
            {"kind": "deploy", "entity": "recommender v3", "score": 0.82,
             "explanation": "v3 took the champion alias 4 minutes before CTR fell.",
             "evidence": {"lag_s": 240}, "deploy": {"model": "recommender", "alias": "champion", "version": "3",
                                                    "previous_version": "2", "at": NOW - 1140, "source": "registry"}},
        ],
        "suggested_action": "Roll back recommender to v2.",
        "actions": [],
        "links": {"grafana": "http://grafana.local/d/vigil-recommender", "drift_report": None},
        "cold_start": False,
    }
    p.update(over)
    return p


def msg(payload: dict[str, Any], *, ref: dict | None = None, kind: MessageKind = MessageKind.INCIDENT,
        mid: int = 1) -> OutboxMessage:
    return OutboxMessage(id=mid, notifier="slack", kind=kind, key=f"incident:{payload.get('incident_id')}",
                         payload=payload, ref=ref)


@pytest.fixture
def slack():
    with FakeSlack(token=TOKEN, channels=("recsys-alerts", "oncall")) as fake:
        yield fake


def notifier(fake: FakeSlack, **kw: Any) -> SlackNotifier:
    kw.setdefault("max_rate_limit_retries", 1)
    kw.setdefault("timeout_s", 5.0)
    return SlackNotifier(TOKEN, base_url=fake.base_url, **kw)


def all_text(blocks: list[dict]) -> str:
    out = []
    for b in blocks:
        if "text" in b:
            out.append(b["text"]["text"])
        for el in b.get("elements", []):
            if isinstance(el.get("text"), str):
                out.append(el["text"])
            elif isinstance(el.get("text"), dict):
                out.append(el["text"]["text"])
    return "\n".join(out)


def test_first_delivery_posts_and_returns_the_ref_to_update_later(slack):
    result = notifier(slack).deliver(msg(incident()))
    assert result.status == DeliveryStatus.DELIVERED, result.error
    [posted] = slack.messages("recsys-alerts")
    assert result.ref == {"channel": slack.channel_id("recsys-alerts"), "ts": posted.ts}
    text = all_text(posted.blocks)
    assert "*ctr* fell 7.2 %, from 0.031 in the baseline (alerts at -5 %)" in text
    assert "recommender v3" in text and "82%" in text
    assert "Roll back recommender to v2." in text
    assert "CTR down 7.2%" in posted.text  # the notification fallback


def test_incident_is_one_message_updated_in_place_until_resolved(slack):
    n = notifier(slack, )
    ref = n.deliver(msg(incident())).ref
    for i in range(5):
        p = incident(updated_at=NOW + 60 * (i + 1),
                     findings=incident()["findings"] + [
                         {"kind": "metric_anomaly", "entity": f"extra-{i}", "value": i + 1.0, "threshold": 0.5,
                          "statistic": "z", "window_start": NOW, "window_end": NOW + 300, "onset": NOW,
                          "score": 0.1}])
        r = n.deliver(msg(p, ref=ref, mid=i + 2))
        assert r.status == DeliveryStatus.DELIVERED, r.error
        assert r.ref == ref
    resolved = incident(status="resolved", resolved_at=NOW + 3600, updated_at=NOW + 3600)
    r = n.deliver(msg(resolved, ref=ref, mid=9))
    assert r.status == DeliveryStatus.DELIVERED

    [only] = slack.messages()
    assert only.updates == 6
    assert "extra-4" in all_text(only.versions[5]["blocks"])
    assert "Resolved" in only.blocks[0]["text"]["text"]
    assert not [b for b in only.blocks if b["type"] == "actions"], "a resolved incident has no buttons"
    assert len(slack.calls("chat.postMessage")) == 1


def test_update_of_a_deleted_message_posts_a_new_one(slack):
    n = notifier(slack)
    ref = n.deliver(msg(incident())).ref
    slack.delete_message("recsys-alerts", ref["ts"])
    r = n.deliver(msg(incident(updated_at=NOW + 60), ref=ref, mid=2))
    assert r.status == DeliveryStatus.DELIVERED
    assert r.ref["ts"] != ref["ts"]
    assert r.detail["reposted_after"] == "message_not_found"
    assert [m.ts for m in slack.messages()] == [r.ref["ts"]]


def test_rate_limited_once_then_delivered_by_the_retry_handler(slack):
    slack.force(429, count=1, retry_after=1)
    started = time.monotonic()
    r = notifier(slack, max_rate_limit_retries=2).deliver(msg(incident()))
    assert r.status == DeliveryStatus.DELIVERED, r.error
    assert time.monotonic() - started >= 1.0, "slack-sdk must have waited Retry-After"
    assert len(slack.calls("chat.postMessage", status=429)) == 1
    assert len(slack.messages()) == 1


def test_rate_limited_beyond_retries_is_retry_with_retry_after(slack):
    slack.force(429, count=5, retry_after=7)
    r = notifier(slack, max_rate_limit_retries=0).deliver(msg(incident()))
    assert r.status == DeliveryStatus.RETRY
    assert r.retry_after == 7.0
    assert "429" in r.error
    assert slack.messages() == []


def test_token_bucket_burst_then_429_then_the_client_waits(slack):
    # Three messages burst through; the fourth to the same channel hits the per-channel limit
    # and slack-sdk waits the integer Retry-After before it lands.
    n = notifier(slack, max_rate_limit_retries=3)
    results = [n.deliver(msg(incident(incident_id=i), mid=i)) for i in range(4)]
    assert [r.status for r in results] == [DeliveryStatus.DELIVERED] * 4
    assert len(slack.calls("chat.postMessage", status=429)) >= 1
    assert len(slack.messages("recsys-alerts")) == 4


@pytest.mark.parametrize("status", [500, 503])
def test_server_error_is_retry(slack, status):
    slack.force(status, count=1)
    r = notifier(slack).deliver(msg(incident()))
    assert r.status == DeliveryStatus.RETRY
    assert str(status) in r.error
    r = notifier(slack).deliver(msg(incident(), mid=2))
    assert r.status == DeliveryStatus.DELIVERED  # the outage passed; nothing was lost


def test_ok_false_internal_error_is_retry(slack):
    slack.force(200, error="internal_error")
    assert notifier(slack).deliver(msg(incident())).status == DeliveryStatus.RETRY


def test_timeout_is_retry(slack):
    slack.delay(2.0)
    r = notifier(slack, timeout_s=0.3).deliver(msg(incident()))
    assert r.status == DeliveryStatus.RETRY


def test_connection_refused_is_retry():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    n = SlackNotifier(TOKEN, base_url=f"http://127.0.0.1:{port}/api/", timeout_s=1.0)
    r = n.deliver(msg(incident()))
    assert r.status == DeliveryStatus.RETRY
    assert "unreachable" in r.error


def test_unknown_channel_fails_naming_the_channel(slack):
    r = notifier(slack).deliver(msg(incident(channel="#no-such-channel")))
    assert r.status == DeliveryStatus.FAILED
    assert "channel_not_found" in r.error and "#no-such-channel" in r.error
    assert "owner_channel" in r.error


def test_bot_not_in_channel_and_archived_channel_fail_with_a_fix(slack):
    slack.add_channel("private-ml", member=False)
    slack.add_channel("old-alerts", archived=True)
    r = notifier(slack).deliver(msg(incident(channel="private-ml")))
    assert r.status == DeliveryStatus.FAILED and "invite" in r.error and "#private-ml" in r.error
    r = notifier(slack).deliver(msg(incident(channel="old-alerts")))
    assert r.status == DeliveryStatus.FAILED and "is_archived" in r.error


def test_wrong_token_keeps_the_message_waiting_and_is_never_logged(slack, caplog):
    """A token Slack rejects failed each message for good: fixed and restarted, the daemon sent
    none of the alerts raised meanwhile. They now wait in the outbox (retried with back-off)."""
    caplog.set_level(logging.DEBUG)
    secret = "xoxb-wrong-secret-123"
    n = SlackNotifier(secret, base_url=slack.base_url)
    r = n.deliver(msg(incident()))
    assert r.status == DeliveryStatus.RETRY and not r.uncertain
    assert "invalid_auth" in r.error and "bot_token" in r.error and "waits in the outbox" in r.error
    assert secret not in caplog.text and secret not in r.error and secret not in repr(n)
    assert notifier(slack).deliver(msg(incident())).status == DeliveryStatus.DELIVERED, "the right token sends it"
    assert len(slack.messages()) == 1


def test_missing_scope_names_the_scope():
    with FakeSlack(token=TOKEN, scopes=("channels:read",)) as fake:
        r = notifier(fake).deliver(msg(incident()))
    assert r.status == DeliveryStatus.FAILED
    assert "chat:write" in r.error and "channels:read" in r.error


def test_huge_incident_is_accepted_by_slack(slack):
    findings = [
        {"kind": "feature_drift", "entity": f"feature_{i:02d}_" + "x" * 200, "value": 0.2 + i / 100,
         "threshold": 0.1, "statistic": "psi", "window_start": NOW - 3600, "window_end": NOW, "onset": NOW,
         "score": i / 60, "message": "drifted " * 100}
        for i in range(60)
    ]
    causes = [
        {"kind": "upstream_drift", "entity": f"feature {i}", "score": 0.5 - i / 100,
         "explanation": "long " * 2000, "evidence": {f"k{j}": "v" * 500 for j in range(20)}}
        for i in range(30)
    ]
    p = incident(title="T" * 400, findings=findings, causes=causes, suggested_action="do " * 2000)
    r = notifier(slack).deliver(msg(p))
    assert r.status == DeliveryStatus.DELIVERED, r.error
    [posted] = slack.messages()
    assert len(posted.blocks) <= 50
    assert "more findings" in all_text(posted.blocks)


def test_rollback_goes_into_the_incident_thread(slack):
    n = notifier(slack)
    ref = n.deliver(msg(incident())).ref
    rb = {"model": "recommender", "incident_id": 42, "from_version": "3", "to_version": "2", "status": "done",
          "at": NOW, "reason": "critical incident, top cause deploy v3 (82%)", "channel": "#recsys-alerts",
          "thread": ref}
    r = n.deliver(OutboxMessage(id=5, notifier="slack", kind=MessageKind.ROLLBACK, key="rollback:1",
                                payload=rb))
    assert r.status == DeliveryStatus.DELIVERED
    reply = [m for m in slack.messages() if m.thread_ts == ref["ts"]]
    assert len(reply) == 1 and "v3 → v2" in reply[0].text
    # sharing the incident's key must not move later incident updates onto the reply
    r = n.deliver(OutboxMessage(id=6, notifier="slack", kind=MessageKind.ROLLBACK, key="incident:42",
                                payload=rb, ref=ref))
    assert r.ref == ref


def test_deploy_messages_are_skipped_without_calling_slack(slack):
    r = notifier(slack).deliver(OutboxMessage(id=1, notifier="slack", kind=MessageKind.DEPLOY, key="deploy:1",
                                              payload={"model": "recommender", "version": "3"}))
    assert r.status == DeliveryStatus.DELIVERED and r.detail == {"skipped": True}
    assert slack.requests == []


def test_missing_channel_fails_unless_a_default_is_configured(slack):
    r = notifier(slack).deliver(msg(incident(channel=None)))
    assert r.status == DeliveryStatus.FAILED and "owner_channel" in r.error
    r = notifier(slack, default_channel="oncall").deliver(msg(incident(channel=None)))
    assert r.status == DeliveryStatus.DELIVERED
    assert len(slack.messages("oncall")) == 1


def test_payload_without_model_fails_naming_the_field(slack):
    p = incident()
    del p["model"]
    r = notifier(slack).deliver(msg(p))
    assert r.status == DeliveryStatus.FAILED and "payload.model" in r.error


def test_fake_accepts_form_bodies_and_checks_tokens():
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError

    with FakeSlack(token=TOKEN, post_burst=10) as slack:
        _check_fake_contract(slack, WebClient, SlackApiError)


def _check_fake_contract(slack, WebClient, SlackApiError):
    client = WebClient(token=TOKEN, base_url=slack.base_url)
    resp = client.api_call("chat.postMessage", data={"channel": "recsys-alerts", "text": "hello"})
    assert resp["ok"] and resp["channel"].startswith("C0")
    assert slack.calls()[-1].content_type.startswith("application/x-www-form-urlencoded")
    assert client.auth_test()["bot_id"]
    with pytest.raises(SlackApiError) as e:
        WebClient(token="xoxb-nope", base_url=slack.base_url).auth_test()
    assert e.value.response["error"] == "invalid_auth"
    with pytest.raises(SlackApiError) as e, pytest.warns(UserWarning):
        client.chat_postMessage(channel="recsys-alerts")
    assert e.value.response["error"] == "no_text"
    with pytest.raises(SlackApiError) as e:
        client.chat_postMessage(channel="recsys-alerts", text="x" * 40_001)
    assert e.value.response["error"] == "msg_too_long"
    with pytest.raises(SlackApiError) as e:
        client.chat_postMessage(channel="recsys-alerts", text="x", blocks=[{"type": "divider"}] * 51)
    assert e.value.response["error"] == "invalid_blocks"
    assert "no more than 50 items allowed [json-pointer:/blocks]" in e.value.response["errors"]


def test_an_answer_lost_after_slack_posted_is_not_posted_again_blindly(slack):
    # Slack took the post, then the connection dropped before its answer (RemoteDisconnected).
    # Re-sending in place would show the channel the incident twice: the delivery must be an
    # uncertain RETRY, so the sender looks in the channel's history before sending again.
    slack.drop(1)
    r = notifier(slack).deliver(msg(incident()))
    assert len(slack.messages()) == 1, "the incident was posted twice"
    assert r.status == DeliveryStatus.RETRY and r.uncertain, r


def test_a_long_retry_after_goes_back_to_the_outbox_instead_of_holding_the_sender(slack, monkeypatch):
    # slack-sdk's rate-limit handler sleeps Retry-After in the sender's thread, once per
    # retry: a workspace limit's 60 s x 3 retries held every page behind it (PagerDuty's
    # too) for minutes, and past the outbox claim another sender could post it as well.
    import slack_sdk.http_retry.builtin_handlers as handlers

    slept: list[float] = []
    monkeypatch.setattr(handlers.time, "sleep", slept.append)
    slack.force(429, count=1, retry_after=60)
    r = notifier(slack, max_rate_limit_retries=3).deliver(msg(incident()))
    assert slept == [], "the sender thread must not sleep a long Retry-After"
    assert r.status == DeliveryStatus.RETRY and r.retry_after == 60.0
    assert slack.messages() == []


def test_a_message_refused_for_the_token_goes_out_minutes_after_the_fix_not_an_hour(slack, tmp_path):
    """Refused for its token all night, a message's back-off grew to the outbox's hour: with the
    token fixed (the daemon restarted on the new one) the alerts that waited stayed silent for up
    to an hour more. A token is fixed by a person at any moment: the wait stays a few minutes."""
    from monitor.cycle.deliver import OutboxSender
    from monitor.metrics import VigilMetrics
    from monitor.store.repository import Store
    from tests.helpers_vigil import make_config

    store = Store(make_config(tmp_path).store.url)
    with store.tx() as s:
        store.enqueue(s, "slack", MessageKind.INCIDENT, "incident:42", incident(), NOW)
    revoked = OutboxSender(store, {"slack": SlackNotifier("xoxb-revoked-1", base_url=slack.base_url)},
                           VigilMetrics())
    t = NOW
    for _ in range(10):  # ten refused attempts, each at least an hour apart: always due
        t += 3600
        revoked.deliver_due(t)
    assert slack.messages() == []
    fixed = OutboxSender(store, {"slack": notifier(slack)}, VigilMetrics())
    assert fixed.deliver_due(t + 5 * 60 + 1) == 1, "the waiting alert is still held by an hour's back-off"
    assert len(slack.messages()) == 1


def _escalated(channel: str = "#recsys-alerts") -> dict[str, Any]:
    return {"incident_id": 42, "model": "recommender", "channel": channel, "change": "escalated",
            "severity": "critical", "previous_severity": "warning", "status": "open", "title": "CTR down",
            "reason": "ctr fell 12%", "mentions": ["<@U0ONCALL>"], "opened_at": NOW, "at": NOW + 60}


def test_an_escalation_whose_incident_message_never_posted_pages_in_the_channel(slack):
    """Its message failed for good (or was dropped): there is no thread, and the @-mention of
    the on-call was recorded delivered as 'skipped: no parent message', paging no one."""
    n = notifier(slack)
    r = n.deliver(msg(_escalated(), kind=MessageKind.REPLY, mid=7))
    assert r.status == DeliveryStatus.DELIVERED, r.error
    [posted] = slack.messages("recsys-alerts")
    assert posted.thread_ts is None and "<@U0ONCALL>" in posted.text and "escalated to *critical*" in posted.text
    assert r.ref is None  # the key's next update posts the incident's message, it does not edit this one
    found = n.find_delivered(msg(_escalated(), kind=MessageKind.REPLY, mid=7))  # an answer lost: looked up
    assert found is not None and found.ref is None and found.detail["found_in_history"]["ts"] == posted.ts
    later = n.deliver(msg(incident(), mid=8, ref=r.ref))
    assert later.ref is not None and later.ref["ts"] != posted.ts
    # a resolve or a repeat without a parent still only edits what people have: nothing to reply to
    quiet = n.deliver(msg({**_escalated(), "change": "repeated"}, kind=MessageKind.REPLY, mid=9))
    assert quiet.detail.get("skipped") == "no parent message" and len(slack.messages("recsys-alerts")) == 2
