"""Interactive button callbacks: signature first, then the payload."""
from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any
from urllib.parse import urlencode

import pytest

from alerts.slack_actions import InvalidSlackSignature, SlackAction, parse_interaction

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
NOW = 1_795_260_001.0


def block_actions(action_id: str = "rollback", value: str = "anomaly-detector:2", **over: Any) -> dict[str, Any]:
    p: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": "U123", "username": "alice", "team_id": "T123"},
        "api_app_id": "A123",
        "team": {"id": "T123", "domain": "acme"},
        "channel": {"id": "C123", "name": "aiops-alerts"},
        "container": {"type": "message", "message_ts": "1795259999.000100", "channel_id": "C123",
                      "is_ephemeral": False},
        "message": {"ts": "1795259999.000100", "text": "...", "blocks": []},
        "trigger_id": "123.456.abc",
        "response_url": "https://hooks.slack.com/actions/T123/456/xyz",
        "actions": [{"type": "button", "action_id": action_id, "block_id": "act1", "value": value,
                     "text": {"type": "plain_text", "text": "Roll back"}, "action_ts": "1795260001.000200"}],
    }
    p.update(over)
    return p


def signed(payload: dict[str, Any] | str, *, ts: int = int(NOW), secret: str = SECRET) -> tuple[bytes, dict[str, str]]:
    raw = payload if isinstance(payload, str) else json.dumps(payload)
    body = urlencode({"payload": raw}).encode()
    sig = "v0=" + hmac.new(secret.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    return body, {"X-Slack-Request-Timestamp": str(ts), "X-Slack-Signature": sig,
                  "Content-Type": "application/x-www-form-urlencoded"}


def test_signed_rollback_click_is_parsed():
    body, headers = signed(block_actions())
    assert parse_interaction(body, headers, SECRET, NOW) == SlackAction(
        action_id="rollback", model="anomaly-detector", incident_id=2, user_id="U123", user_name="alice",
        channel_id="C123", message_ts="1795259999.000100",
        response_url="https://hooks.slack.com/actions/T123/456/xyz", action_ts="1795260001.000200",
    )


def test_header_names_are_case_insensitive():
    body, headers = signed(block_actions("ack"))
    lower = {k.lower(): v for k, v in headers.items()}
    assert parse_interaction(body, lower, SECRET, NOW).action_id == "ack"


def test_wrong_secret_is_rejected():
    body, headers = signed(block_actions(), secret="another-secret")
    with pytest.raises(InvalidSlackSignature, match="signature mismatch"):
        parse_interaction(body, headers, SECRET, NOW)


def test_altered_body_is_rejected():
    body, headers = signed(block_actions(value="anomaly-detector:2"))
    tampered = body.replace(b"%3A2", b"%3A3")
    assert tampered != body
    with pytest.raises(InvalidSlackSignature):
        parse_interaction(tampered, headers, SECRET, NOW)


@pytest.mark.parametrize("age", [301, -301, 3600])
def test_stale_or_future_timestamp_is_rejected_even_with_a_good_signature(age):
    body, headers = signed(block_actions(), ts=int(NOW) - age)
    with pytest.raises(InvalidSlackSignature, match="stale"):
        parse_interaction(body, headers, SECRET, NOW)


def test_timestamp_within_five_minutes_is_accepted():
    body, headers = signed(block_actions(), ts=int(NOW) - 299)
    assert parse_interaction(body, headers, SECRET, NOW).incident_id == 2


def test_missing_headers_and_secret_are_rejected():
    body, headers = signed(block_actions())
    with pytest.raises(InvalidSlackSignature, match="missing"):
        parse_interaction(body, {"X-Slack-Request-Timestamp": headers["X-Slack-Request-Timestamp"]}, SECRET, NOW)
    with pytest.raises(InvalidSlackSignature, match="integer"):
        parse_interaction(body, {**headers, "X-Slack-Request-Timestamp": "soon"}, SECRET, NOW)
    with pytest.raises(InvalidSlackSignature, match="signing_secret"):
        parse_interaction(body, headers, "", NOW)


@pytest.mark.parametrize(
    "payload,field",
    [
        (block_actions(value="no-colon"), "actions[0].value"),
        (block_actions(value="model:abc"), "actions[0].value"),
        (block_actions(action_id="delete_everything"), "actions[0].action_id"),
        (block_actions(actions=[]), "payload.actions"),
        (block_actions(type="view_submission"), "payload.type"),
        (block_actions(user={}), "payload.user.id"),
        ("{not json", "payload: not valid JSON"),
        ("[1, 2]", "payload: expected a JSON object"),
    ],
)
def test_malformed_payloads_name_the_field(payload, field):
    body, headers = signed(payload)
    with pytest.raises(ValueError, match=field.replace("[", r"\[").replace("]", r"\]")):
        parse_interaction(body, headers, SECRET, NOW)


def test_body_without_payload_field():
    body = b"foo=bar"
    ts = str(int(NOW))
    sig = "v0=" + hmac.new(SECRET.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    with pytest.raises(ValueError, match="form field 'payload'"):
        parse_interaction(body, {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sig}, SECRET, NOW)


def test_model_names_with_dots_and_dashes_survive_the_button_value():
    body, headers = signed(block_actions("silence", value="fraud.v2-eu:1234"))
    a = parse_interaction(body, headers, SECRET, NOW)
    assert (a.model, a.incident_id, a.action_id) == ("fraud.v2-eu", 1234, "silence")


def test_channel_and_ts_fall_back_to_the_container():
    p = block_actions()
    del p["channel"]
    del p["message"]
    body, headers = signed(p)
    a = parse_interaction(body, headers, SECRET, NOW)
    assert (a.channel_id, a.message_ts) == ("C123", "1795259999.000100")
