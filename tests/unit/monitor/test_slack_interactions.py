"""Slack buttons end to end: signed callbacks to /v1/slack/actions ack, silence and roll back."""
from __future__ import annotations

import hashlib
import hmac
import json
import time
from urllib.parse import urlencode

from tests.unit.monitor.test_api import MODEL, T0, build

SECRET = "8f14e45fceea167a5a36dedd4bea2543"


def signed(payload: dict, secret: str = SECRET, ts: int | None = None) -> tuple[bytes, dict[str, str]]:
    body = urlencode({"payload": json.dumps(payload)}).encode()
    ts = int(time.time()) if ts is None else ts
    sig = "v0=" + hmac.new(secret.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    return body, {"X-Slack-Request-Timestamp": str(ts), "X-Slack-Signature": sig,
                  "Content-Type": "application/x-www-form-urlencoded"}


def click(action_id: str, incident_id: int) -> dict:
    return {"type": "block_actions", "user": {"id": "U123", "username": "alice", "team_id": "T1"},
            "channel": {"id": "C1", "name": "recsys-owners"},
            "container": {"type": "message", "message_ts": "1795259999.000100", "channel_id": "C1"},
            "response_url": "https://hooks.slack.com/actions/T1/1/x",
            "actions": [{"type": "button", "action_id": action_id, "block_id": "b",
                         "value": f"{MODEL}:{incident_id}", "action_ts": "1795260001.000200"}]}


def setup(tmp_path, monkeypatch):
    monkeypatch.setenv("SLACK_TEST_SECRET", SECRET)
    # Automatic rollback off: the person on call decides, with the button.
    api = build(tmp_path, monkeypatch, slack={"signing_secret": "${SLACK_TEST_SECRET}"},
                policy={"rollback": {"enabled": False}})
    api.deploy("2", T0 - 900)
    report = api.vigil.run_cycle(MODEL, T0)
    return api, report.incident_id


def test_buttons_ack_and_roll_back_with_the_slack_user_as_actor(tmp_path, monkeypatch):
    api, incident_id = setup(tmp_path, monkeypatch)
    assert incident_id is not None
    body, headers = signed(click("ack", incident_id))
    r = api.client.post("/v1/slack/actions", content=body, headers=headers)
    assert r.status_code == 200 and "Acknowledged" in r.json()["text"]
    assert api.vigil.store.incident(incident_id).acknowledged_by == "slack:alice"

    assert api.alias() == "2"
    body, headers = signed(click("rollback", incident_id))
    r = api.client.post("/v1/slack/actions", content=body, headers=headers)
    assert r.status_code == 200 and "Rollback done" in r.json()["text"]
    assert api.alias() == "1"
    entries = api.client.get("/v1/audit").json()["entries"]
    assert [e["action"] for e in entries if e["actor"] == "slack:alice"][-2:] == ["rollback.requested",
                                                                                 "rollback.done"]


def test_forged_or_stale_callbacks_are_refused(tmp_path, monkeypatch):
    api, incident_id = setup(tmp_path, monkeypatch)
    body, headers = signed(click("ack", incident_id), secret="not-the-secret")
    assert api.client.post("/v1/slack/actions", content=body, headers=headers).status_code == 401
    body, headers = signed(click("ack", incident_id), ts=int(time.time()) - 3600)
    assert api.client.post("/v1/slack/actions", content=body, headers=headers).status_code == 401
    assert api.vigil.store.incident(incident_id).acknowledged_by is None
    body, headers = signed({"type": "block_actions"})
    assert api.client.post("/v1/slack/actions", content=body, headers=headers).status_code == 400


def test_without_a_signing_secret_the_endpoint_is_disabled(tmp_path, monkeypatch):
    api = build(tmp_path, monkeypatch)
    body, headers = signed(click("ack", 1))
    r = api.client.post("/v1/slack/actions", content=body, headers=headers)
    assert r.status_code == 503 and "signing_secret" in r.json()["error"]
