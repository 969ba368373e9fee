"""The local Slack server's read methods against their documented contract, through
slack-sdk's WebClient (what Vigil uses): see tests/fakes/slack_history.py for sources."""
from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from tests.fakes.slack_server import FakeSlack

TOKEN = "xoxb-history-3e1f"
META = {"event_type": "vigil_message", "event_payload": {"outbox_key": "incident:1:#a", "outbox_id": 7}}


@pytest.fixture
def slack():
    with FakeSlack(token=TOKEN, channels=("alerts", "quiet"), post_rate_per_s=1000, post_burst=1000,
                   read_burst=1000) as fake:
        yield fake


def client(fake: FakeSlack, token: str = TOKEN) -> WebClient:
    return WebClient(token=token, base_url=fake.base_url)


def post(c: WebClient, n: int, channel: str = "alerts", **kw: Any) -> list[str]:
    return [c.chat_postMessage(channel=channel, text=f"m{i}", **kw)["ts"] for i in range(n)]


def error(call: Any) -> dict[str, Any]:
    with pytest.raises(SlackApiError) as e:
        call()
    return dict(e.value.response.data)


def test_history_is_newest_first_and_cursor_pages_cover_it_once(slack):
    c = client(slack)
    posted = post(c, 7)
    cid = slack.channel_id("alerts")
    first = c.conversations_history(channel=cid, limit=3)
    assert [m["ts"] for m in first["messages"]] == posted[::-1][:3]
    assert first["has_more"] is True and first["response_metadata"]["next_cursor"]
    seen, cursor = [], None
    while True:
        page = c.conversations_history(channel=cid, limit=3, cursor=cursor)
        seen += [m["ts"] for m in page["messages"]]
        cursor = (page.get("response_metadata") or {}).get("next_cursor")
        if not cursor:
            assert page["has_more"] is False
            break
    assert seen == posted[::-1]
    assert len(c.conversations_history(channel=cid)["messages"]) == 7  # default limit 100


def test_oldest_and_latest_are_exclusive_unless_inclusive(slack):
    c = client(slack)
    ts = post(c, 5)
    cid = slack.channel_id("alerts")
    inner = c.conversations_history(channel=cid, oldest=ts[1], latest=ts[3])["messages"]
    assert [m["ts"] for m in inner] == [ts[2]]
    both = c.conversations_history(channel=cid, oldest=ts[1], latest=ts[3], inclusive=True)["messages"]
    assert [m["ts"] for m in both] == [ts[3], ts[2], ts[1]]
    assert error(lambda: c.conversations_history(channel=cid, oldest="yesterday"))["error"] == "invalid_ts_oldest"


def test_metadata_is_kept_and_returned_only_when_asked_for(slack):
    c = client(slack)
    c.chat_postMessage(channel="alerts", text="with", metadata=META)
    cid = slack.channel_id("alerts")
    [plain] = c.conversations_history(channel=cid)["messages"]
    assert "metadata" not in plain
    [full] = c.conversations_history(channel=cid, include_all_metadata=True)["messages"]
    assert full["metadata"] == META
    assert error(lambda: c.chat_postMessage(channel="alerts", text="x", metadata={"event_type": "x"})
                 )["error"] == "invalid_metadata_schema"


def test_history_wants_an_id_a_member_bot_the_scope_and_a_valid_cursor(slack):
    c = client(slack)
    assert error(lambda: c.conversations_history(channel="#alerts"))["error"] == "channel_not_found"
    assert error(lambda: c.conversations_history(channel=slack.channel_id("alerts"), cursor="bm9wZQ=="))[
        "error"] == "invalid_cursor"
    outside = slack.add_channel("elsewhere", member=False)
    assert error(lambda: c.conversations_history(channel=outside))["error"] == "not_in_channel"
    with FakeSlack(token=TOKEN, channels=("alerts",), scopes=("chat:write",)) as narrow:
        e = error(lambda: client(narrow).conversations_history(channel=narrow.channel_id("alerts")))
    assert (e["error"], e["needed"], e["provided"]) == ("missing_scope", "channels:history", "chat:write")


def test_thread_replies_are_not_in_history_but_in_replies_parent_first(slack):
    c = client(slack)
    [parent] = post(c, 1)
    replies = post(c, 3, thread_ts=parent)
    cid = slack.channel_id("alerts")
    assert [m["ts"] for m in c.conversations_history(channel=cid)["messages"]] == [parent]
    thread = c.conversations_replies(channel=cid, ts=parent)["messages"]
    assert [m["ts"] for m in thread] == [parent, *replies]
    page = c.conversations_replies(channel=cid, ts=parent, limit=2)
    rest = c.conversations_replies(channel=cid, ts=parent, limit=2, cursor=page["response_metadata"]["next_cursor"])
    assert [m["ts"] for m in page["messages"] + rest["messages"]] == [parent, *replies]
    assert error(lambda: c.conversations_replies(channel=cid, ts="1.000001"))["error"] == "thread_not_found"


def test_list_pages_channels_with_their_ids(slack):
    c = client(slack)
    first = c.conversations_list(limit=1)
    rest = c.conversations_list(limit=1, cursor=first["response_metadata"]["next_cursor"])
    assert [ch["name"] for ch in first["channels"] + rest["channels"]] == ["alerts", "quiet"]
    assert rest["response_metadata"]["next_cursor"] == ""
    assert first["channels"][0]["id"] == slack.channel_id("alerts")


def test_history_is_tier_3_limited_per_method_with_an_integer_retry_after():
    with FakeSlack(token=TOKEN, channels=("alerts",), read_burst=2) as fake:
        c = WebClient(token=TOKEN, base_url=fake.base_url)  # no retry handler: see the 429 itself
        cid = fake.channel_id("alerts")
        c.conversations_history(channel=cid)
        c.conversations_history(channel=cid)
        with pytest.raises(SlackApiError) as e:
            c.conversations_history(channel=cid)
    assert e.value.response.status_code == 429
    assert e.value.response.data["error"] == "ratelimited"
    assert int(e.value.response.headers["Retry-After"]) >= 1


def test_ts_are_posting_times_unique_and_increasing(slack):
    ts = post(client(slack), 20)
    assert [Decimal(t) for t in ts] == sorted({Decimal(t) for t in ts})
