"""The local Slack's channel answers follow Slack's contract (docs/CONTRACTS.md §6):
conversations.info by ID, membership as chat.postMessage meets it, the scopes header."""
from __future__ import annotations

from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from tests.fakes.slack_server import FakeSlack

TOKEN = "xoxb-fake-token"


def _error(call: Any) -> dict[str, Any]:
    with pytest.raises(SlackApiError) as e:
        call()
    assert e.value.response.status_code == 200
    return dict(e.value.response.data)


def test_conversations_info_answers_by_id_hides_private_channels_and_wants_the_type_s_scope():
    with FakeSlack(token=TOKEN, scopes=("chat:write", "channels:read")) as slack:
        c = WebClient(token=TOKEN, base_url=slack.base_url)
        outside = slack.add_channel("elsewhere", member=False)
        hidden = slack.add_channel("secret", member=False, private=True)
        mine = slack.add_channel("ours", private=True)
        info = c.conversations_info(channel=outside)
        assert info["channel"]["id"] == outside and info["channel"]["is_member"] is False
        assert info["channel"]["is_private"] is False and info.headers["X-OAuth-Scopes"] == "channels:read, chat:write"
        assert _error(lambda: c.conversations_info(channel="#elsewhere")) == {"ok": False,
                                                                               "error": "channel_not_found"}
        assert _error(lambda: c.conversations_info(channel=hidden))["error"] == "channel_not_found"
        e = _error(lambda: c.conversations_info(channel=mine))
        assert (e["error"], e["needed"]) == ("missing_scope", "groups:read")
        assert [ch["name"] for ch in c.conversations_list(types="public_channel,private_channel")["channels"]] == [
            "recsys-alerts", "elsewhere"], "a private channel is listed only with groups:read"


def test_a_post_to_a_public_channel_the_bot_is_not_in_needs_chat_write_public():
    with FakeSlack(token=TOKEN, scopes=("chat:write",)) as slack:
        slack.add_channel("elsewhere", member=False)
        slack.add_channel("secret", member=False, private=True)
        c = WebClient(token=TOKEN, base_url=slack.base_url)
        assert _error(lambda: c.chat_postMessage(channel="#elsewhere", text="x"))["error"] == "not_in_channel"
        assert _error(lambda: c.chat_postMessage(channel="#secret", text="x"))["error"] == "channel_not_found"
        slack.scopes.add("chat:write.public")
        assert c.chat_postMessage(channel="#elsewhere", text="x")["ok"]
        assert _error(lambda: c.chat_postMessage(channel="#secret", text="x"))["error"] == "channel_not_found"


def test_an_unknown_token_gets_no_scopes_header():
    with FakeSlack(token=TOKEN) as slack, pytest.raises(SlackApiError) as e:
        WebClient(token="xoxb-other", base_url=slack.base_url).auth_test()
    assert "X-OAuth-Scopes" not in e.value.response.headers
