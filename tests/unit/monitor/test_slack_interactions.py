"""Slack buttons end to end: signed callbacks to /v1/slack/actions ack, silence and roll back,
after the 200, for the people the config names; the result reaches the person who pressed
through the press's response_url (the local fake Slack's receiver)."""
from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.fakes.slack_server import FakeSlack
from tests.unit.monitor.test_api import MODEL, T0, Api, build

SECRET = "8f14e45fceea167a5a36dedd4bea2543"
BOT = "xoxb-vigil-test-bot"
ALICE, MALLORY = "U0ALICE01", "U0MALLORY"


def signed(payload: dict, secret: str = SECRET, ts: int | None = None) -> tuple[bytes, dict[str, str]]:
    body = urlencode({"payload": json.dumps(payload)}).encode()
    ts = int(time.time()) if ts is None else ts
    sig = "v0=" + hmac.new(secret.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    return body, {"X-Slack-Request-Timestamp": str(ts), "X-Slack-Signature": sig,
                  "Content-Type": "application/x-www-form-urlencoded"}


def click(action_id: str, incident_id: int, response_url: str = "", user: str = ALICE,
          name: str = "alice") -> dict:
    return {"type": "block_actions", "user": {"id": user, "username": name, "team_id": "T1"},
            "channel": {"id": "C1", "name": "recsys-owners"},
            "container": {"type": "message", "message_ts": "1795259999.000100", "channel_id": "C1"},
            "response_url": response_url,
            "actions": [{"type": "button", "action_id": action_id, "block_id": "b",
                         "value": f"{MODEL}:{incident_id}", "action_ts": "1795260001.000200"}]}


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack(token=BOT) as fake:
        yield fake


def setup(tmp_path, monkeypatch, slack: FakeSlack, *, actors: dict[str, Any] | None = None,
          model_actors: dict[str, Any] | None = None) -> tuple[Api, int]:
    monkeypatch.setenv("SLACK_TEST_SECRET", SECRET)
    monkeypatch.setenv("SLACK_TEST_BOT", BOT)
    section: dict[str, Any] = {"signing_secret": "${SLACK_TEST_SECRET}", "bot_token": "${SLACK_TEST_BOT}",
                               "base_url": slack.base_url, "timeout_s": 5}
    if actors is not None:
        section["actors"] = actors
    models = None
    if model_actors is not None:
        from tests.helpers_vigil import model_config
        models = [model_config(slack_actors=model_actors)]
    # Automatic rollback off: the person on call decides, with the button.
    api = build(tmp_path, monkeypatch, slack=section, policy={"rollback": {"enabled": False}},
                **({"models": models} if models else {}))
    api.deploy("2", T0 - 900)
    report = api.vigil.run_cycle(MODEL, T0)
    assert report.incident_id is not None
    return api, report.incident_id


def press(api: Api, payload: dict, **sign: Any) -> Any:
    """One signed press, and the worker done with it."""
    body, headers = signed(payload, **sign)
    r = api.anon.post("/v1/slack/actions", content=body, headers=headers)
    assert api.app.state.slack_desk.worker.wait_idle(10)
    return r


def audit(api: Api) -> list[dict[str, Any]]:
    return api.client.get("/v1/audit", params={"limit": 1000}).json()["items"]


def test_buttons_ack_and_roll_back_with_the_slack_user_in_the_audit(tmp_path, monkeypatch, slack):
    api, incident_id = setup(tmp_path, monkeypatch, slack, actors={"users": [ALICE]})
    url = slack.response_url()
    r = press(api, click("ack", incident_id, url))
    assert r.status_code == 200 and r.json()["response_type"] == "ephemeral"
    assert api.vigil.store.incident(incident_id).acknowledged_by == f"slack:{ALICE} (alice)"

    assert api.alias() == "2"
    press(api, click("rollback", incident_id, url))
    assert api.alias() == "1"
    replies = slack.responses(url)
    assert [b["response_type"] for b in replies] == ["ephemeral", "ephemeral"]
    assert all(b["replace_original"] is False for b in replies)
    assert "Acknowledged" in replies[0]["text"] and "Rollback done" in replies[1]["text"]
    mine = [e["action"] for e in audit(api) if e["actor"] == f"slack:{ALICE} (alice)"]
    assert mine == ["incident.ack", "rollback.requested", "rollback.done"]


def test_a_replayed_request_is_refused_and_acts_once(tmp_path, monkeypatch, slack):
    api, incident_id = setup(tmp_path, monkeypatch, slack, actors={"users": [ALICE]})
    body, headers = signed(click("silence", incident_id, slack.response_url()))
    first = api.anon.post("/v1/slack/actions", content=body, headers=headers)
    again = api.anon.post("/v1/slack/actions", content=body, headers=headers)
    assert api.app.state.slack_desk.worker.wait_idle(10)
    assert first.status_code == again.status_code == 200
    assert again.json() == {"response_type": "ephemeral", "text": "This button press was already handled."}
    assert [e["action"] for e in audit(api)].count("silence.create") == 1
    # A new press (a new signature) is a new request, and acts.
    press(api, click("ack", incident_id, slack.response_url()))
    assert api.vigil.store.incident(incident_id).acknowledged_by is not None


def test_a_user_not_listed_is_refused_ephemerally_and_audited(tmp_path, monkeypatch, slack):
    api, incident_id = setup(tmp_path, monkeypatch, slack, actors={"users": [ALICE]})
    url = slack.response_url()
    r = press(api, click("rollback", incident_id, url, user=MALLORY, name="mallory"))
    assert r.status_code == 200
    assert api.alias() == "2", "nothing moved"
    [reply] = slack.responses(url)
    assert reply["response_type"] == "ephemeral"
    assert reply["text"] == (f"You may not roll back incident {incident_id} of {MODEL} from Slack: "
                             f"that needs <@{ALICE}>.")
    [refused] = [e for e in audit(api) if e["action"] == "slack.refused"]
    assert refused["actor"] == f"slack:{MALLORY} (mallory)" and refused["detail"]["users"] == [ALICE]
    assert refused["target"] == f"incident:{incident_id}"


def test_group_members_may_ack_and_rollback_takes_its_stricter_list(tmp_path, monkeypatch, slack):
    slack.add_usergroup("S0ONCALL1", [MALLORY, "U0BOB0001"])
    api, incident_id = setup(tmp_path, monkeypatch, slack, actors={"users": [], "groups": ["S0ONCALL1"],
                                                                    "rollback": {"users": [ALICE]}})
    url = slack.response_url()
    press(api, click("ack", incident_id, url, user="U0BOB0001", name="bob"))
    assert api.vigil.store.incident(incident_id).acknowledged_by == "slack:U0BOB0001 (bob)"
    press(api, click("rollback", incident_id, url, user="U0BOB0001", name="bob"))
    assert api.alias() == "2"
    assert "needs <@U0ALICE01>" in slack.responses(url)[-1]["text"]
    press(api, click("silence", incident_id, url, user=MALLORY, name="mallory"))
    assert "Silenced recommender" in slack.responses(url)[-1]["text"]  # a silence of the model, listed
    # Two presses by group members, one Slack call: membership is cached for a minute.
    assert len(slack.calls("usergroups.users.list")) == 1
    press(api, click("rollback", incident_id, url))
    assert api.alias() == "1"


def test_a_group_that_cannot_be_read_refuses_and_says_why(tmp_path, monkeypatch):
    with FakeSlack(token=BOT, scopes=("chat:write",)) as narrow:
        narrow.add_usergroup("S0ONCALL1", [ALICE])
        api, incident_id = setup(tmp_path, monkeypatch, narrow, actors={"groups": ["S0ONCALL1"]})
        url = narrow.response_url()
        press(api, click("ack", incident_id, url))
        assert api.vigil.store.incident(incident_id).acknowledged_by is None
        text = narrow.responses(url)[0]["text"]
        assert "a member of <!subteam^S0ONCALL1>" in text and "usergroups:read" in text


def test_the_models_own_list_replaces_the_global_one(tmp_path, monkeypatch, slack):
    api, incident_id = setup(tmp_path, monkeypatch, slack, actors={"users": [ALICE]},
                             model_actors={"users": [MALLORY]})
    press(api, click("ack", incident_id, slack.response_url()))
    assert api.vigil.store.incident(incident_id).acknowledged_by is None
    press(api, click("ack", incident_id, slack.response_url(), user=MALLORY, name="mallory"))
    assert api.vigil.store.incident(incident_id).acknowledged_by == f"slack:{MALLORY} (mallory)"


def test_without_any_slack_actors_no_one_may_press(tmp_path, monkeypatch, slack):
    api, incident_id = setup(tmp_path, monkeypatch, slack)
    url = slack.response_url()
    press(api, click("ack", incident_id, url))
    assert api.vigil.store.incident(incident_id).acknowledged_by is None
    assert "models[].slack_actors or slack.actors" in slack.responses(url)[0]["text"]


def test_forged_or_stale_callbacks_are_refused(tmp_path, monkeypatch, slack):
    api, incident_id = setup(tmp_path, monkeypatch, slack, actors={"users": [ALICE]})
    body, headers = signed(click("ack", incident_id), secret="not-the-secret")
    assert api.anon.post("/v1/slack/actions", content=body, headers=headers).status_code == 401
    body, headers = signed(click("ack", incident_id), ts=int(time.time()) - 3600)
    assert api.anon.post("/v1/slack/actions", content=body, headers=headers).status_code == 401
    assert api.app.state.slack_desk.worker.wait_idle(10)
    assert api.vigil.store.incident(incident_id).acknowledged_by is None
    body, headers = signed({"type": "block_actions"})
    assert api.anon.post("/v1/slack/actions", content=body, headers=headers).status_code == 400


def test_without_a_signing_secret_the_endpoint_is_disabled(tmp_path, monkeypatch):
    api = build(tmp_path, monkeypatch)
    body, headers = signed(click("ack", 1))
    r = api.anon.post("/v1/slack/actions", content=body, headers=headers)
    assert r.status_code == 503 and "signing_secret" in r.json()["error"]


def test_the_silence_button_makes_a_listed_silence_of_the_model_that_can_be_expired(tmp_path, monkeypatch, slack):
    api, incident_id = setup(tmp_path, monkeypatch, slack, actors={"users": [ALICE]})
    url = slack.response_url()
    press(api, click("silence", incident_id, url))
    severity = api.vigil.store.incident(incident_id).severity
    (made,) = api.client.get("/v1/silences").json()["items"]
    assert [m["text"] for m in made["matchers"]] == [f'model="{MODEL}"', f'severity="{severity}"']
    assert made["created_by"] == f"slack:{ALICE} (alice)" and made["status"]["state"] == "active"
    assert made["ends_at"] - made["starts_at"] == pytest.approx(4 * 3600)
    assert f"silence {made['id']}" in slack.responses(url)[-1]["text"]
    assert api.client.delete(f"/v1/silences/{made['id']}").json()["status"]["state"] == "expired"


def test_a_press_whose_action_breaks_tells_the_person_instead_of_nothing(tmp_path, monkeypatch, slack, caplog):
    """Slack was told "On it ... the result follows here"; when the action raised (the store
    unreachable for a moment) the worker only logged it, and the person waited for a
    result that never came, not knowing whether the rollback happened."""
    from sqlalchemy.exc import OperationalError

    api, incident_id = setup(tmp_path, monkeypatch, slack, actors={"users": [ALICE]})

    def store_down(*_a: Any, **_k: Any) -> Any:
        raise OperationalError("SELECT 1", {}, Exception("could not connect to server"))

    monkeypatch.setattr(api.vigil.store, "incident", store_down)
    url = slack.response_url()
    r = press(api, click("rollback", incident_id, url))
    assert "On it" in r.json()["text"]
    replies = slack.responses(url)
    assert len(replies) == 1 and replies[0]["response_type"] == "ephemeral"
    text = replies[0]["text"]
    assert f"roll back incident {incident_id}" in text and "failed" in text and "press again" in text
    assert "could not connect" not in text, "the cause is in the server log, not in Slack"
    assert "slack rollback" in caplog.text and "could not connect" in caplog.text


def test_a_press_still_queued_at_shutdown_is_told_nothing_was_done(tmp_path, monkeypatch, slack):
    """Slack had been answered "On it ... the result follows here"; a press still waiting in
    the worker's queue when Vigil stopped (a deploy, a restart) was cancelled silently, and
    the person waited for a rollback that never came."""
    import threading

    from monitor.api.worker import BoundedWorker

    api, incident_id = setup(tmp_path, monkeypatch, slack, actors={"users": [ALICE]})
    desk = api.app.state.slack_desk
    desk.worker = BoundedWorker("vigil-slack", workers=1)
    started, release = threading.Event(), threading.Event()
    real = api.vigil.operator.slack_action

    def slow(action: Any, now: float) -> str:
        started.set()
        release.wait(10)
        return real(action, now)

    monkeypatch.setattr(api.vigil.operator, "slack_action", slow)
    running, queued = slack.response_url(), slack.response_url()
    body, headers = signed(click("ack", incident_id, running))
    assert "On it" in api.anon.post("/v1/slack/actions", content=body, headers=headers).json()["text"]
    assert started.wait(5)
    body, headers = signed(click("rollback", incident_id, queued))
    assert "On it" in api.anon.post("/v1/slack/actions", content=body, headers=headers).json()["text"]
    closing = threading.Thread(target=desk.worker.close, args=(5,))
    closing.start()
    closing.join(0.5)
    release.set()
    closing.join(10)
    assert api.alias() == "2", "the queued rollback never ran"
    [told] = slack.responses(queued)
    assert "stopping" in told["text"] and f"roll back incident {incident_id}" in told["text"]
    assert "press again" in told["text"]
    assert "Acknowledged" in slack.responses(running)[0]["text"], "the running press finished"


def test_pressing_silence_twice_keeps_one_silence_and_names_it_both_times(tmp_path, monkeypatch, slack):
    """A double-click (or a second person pressing before the message updates) is a second
    signed press: it made a second silence, and expiring the one Slack named left the
    other muting the model for 4 h more."""
    api, incident_id = setup(tmp_path, monkeypatch, slack, actors={"users": [ALICE, MALLORY]})
    first, second = slack.response_url(), slack.response_url()
    press(api, click("silence", incident_id, first))
    again = click("silence", incident_id, second, user=MALLORY, name="mallory")
    again["actions"][0]["action_ts"] = "1795260001.900200"  # another click: another body and signature
    press(api, again)
    (made,) = api.client.get("/v1/silences").json()["items"]
    assert f"silence {made['id']}" in slack.responses(first)[-1]["text"]
    told = slack.responses(second)[-1]["text"]
    assert f"silence {made['id']}" in told and "already" in told.lower()
    assert [e["action"] for e in audit(api)].count("silence.create") == 1


def test_roll_back_on_a_resolved_incident_moves_nothing(tmp_path, monkeypatch, slack):
    """The message of a resolved incident loses its buttons, but a press on a copy Slack had
    not updated yet (the update failed, a client offline) still rolled the model back,
    though ack and silence on it are refused: the incident is over, v2 stood fine since."""
    from alerts.lifecycle import IncidentStatus
    from monitor.store.repository import IncidentRow

    api, incident_id = setup(tmp_path, monkeypatch, slack, actors={"users": [ALICE]})
    with api.vigil.store.tx() as s:
        s.get(IncidentRow, incident_id).status = IncidentStatus.RESOLVED
    url = slack.response_url()
    press(api, click("rollback", incident_id, url))
    assert api.alias() == "2"
    told = slack.responses(url)[-1]["text"]
    assert f"incident {incident_id} is resolved" in told
    assert "rollback.requested" not in [e["action"] for e in audit(api)]


def test_a_second_ack_says_who_already_has_it(tmp_path, monkeypatch, slack):
    """Bob pressed Acknowledge a moment after Alice (before the message lost the button):
    he was told "Acknowledged incident N." and believed he had it, while the incident
    (and its message) named Alice."""
    api, incident_id = setup(tmp_path, monkeypatch, slack, actors={"users": [ALICE, MALLORY]})
    press(api, click("ack", incident_id, slack.response_url()))
    url = slack.response_url()
    late = click("ack", incident_id, url, user=MALLORY, name="mallory")
    late["actions"][0]["action_ts"] = "1795260002.000300"
    press(api, late)
    assert api.vigil.store.incident(incident_id).acknowledged_by == f"slack:{ALICE} (alice)"
    told = slack.responses(url)[-1]["text"]
    assert "already acknowledged" in told and f"slack:{ALICE} (alice)" in told


def test_an_ack_that_changed_nothing_is_not_audited_as_an_ack(tmp_path, monkeypatch, slack):
    """The audit log said Mallory acknowledged the incident too (her press came second and
    changed nothing), so who took it could not be read from the log."""
    api, incident_id = setup(tmp_path, monkeypatch, slack, actors={"users": [ALICE, MALLORY]})
    press(api, click("ack", incident_id, slack.response_url()))
    late = click("ack", incident_id, slack.response_url(), user=MALLORY, name="mallory")
    late["actions"][0]["action_ts"] = "1795260002.000300"
    press(api, late)
    acks = [e["actor"] for e in audit(api) if e["action"] == "incident.ack"]
    assert acks == [f"slack:{ALICE} (alice)"]


def test_slacks_ssl_check_of_the_command_url_is_answered_200_and_does_nothing(tmp_path, monkeypatch, slack):
    """Slack checks a slash command's URL with a bare `ssl_check=1` form (no command, no
    payload); it got a 401 or 400, and the app's set-up said the URL was failing. A forged
    one gets the same empty 200 and changes nothing."""
    api, incident = setup(tmp_path, monkeypatch, slack)
    before = api.vigil.store.audit_entries()
    r = api.anon.post("/v1/slack/actions", content=b"ssl_check=1&token=legacy-token",
                      headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200 and r.json() == {}
    assert api.vigil.store.audit_entries() == before
    r = api.anon.post("/v1/slack/actions", content=b"ssl_check=1&command=%2Fvigil&text=silence+list",
                      headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 401, "a command is never answered without its signature"


def test_roll_back_on_a_message_drawn_before_the_incident_blamed_another_deploy_moves_nothing(
        tmp_path, monkeypatch, slack):
    """The button carried only the incident; the target was worked out again at the press.
    A press on a message showing "v2 back to v1", after v3 shipped and the incident came to
    blame it, rolled v3 back to v2: a move nobody confirmed. The move the message showed now
    travels with the press, and a different one is refused."""
    import copy

    from monitor.store.repository import IncidentRow

    api, incident_id = setup(tmp_path, monkeypatch, slack, actors={"users": [ALICE]})
    from alerts.slack_blocks import render_incident

    shown = {"model": MODEL, "incident_id": incident_id, "severity": "warning", "status": "open", "title": "t",
             "causes": api.vigil.store.incident(incident_id).causes}
    [message] = [b for b in render_incident(shown)[1] if b["type"] == "actions"]  # the message as drawn then
    assert message["block_id"] == "vigil_incident_actions:2:1"
    api.deploy("3", T0 + 30)
    with api.vigil.store.tx() as s:  # the incident now blames v3
        row = s.get(IncidentRow, incident_id)
        causes = copy.deepcopy(row.causes)
        for c in causes:
            if c.get("kind") == "deploy":
                c["deploy"].update(version="3", previous_version="2")
        row.causes = causes
    url = slack.response_url()
    stale = click("rollback", incident_id, url)
    stale["actions"][0]["block_id"] = message["block_id"]
    press(api, stale)
    assert api.alias() == "3", "rolled back a version the button never named"
    told = slack.responses(url)[-1]["text"]
    assert "Nothing moved" in told and "v3" in told
    url = slack.response_url()
    fresh = click("rollback", incident_id, url)
    fresh["actions"][0].update(block_id="vigil_incident_actions:3:2", action_ts="1795260009.000900")
    press(api, fresh)  # the updated message's button goes on to the guards (which judge v2)
    assert "Nothing moved: this message" not in slack.responses(url)[-1]["text"], slack.responses(url)[-1]["text"]


@pytest.mark.parametrize("act", ["ack", "silence"])
def test_an_ack_or_silence_and_its_audit_entry_commit_together(tmp_path, monkeypatch, slack, act):
    """The ack (or silence) committed, then its audit entry was appended in a transaction of
    its own: a crash between the two (kill -9, the store gone) left an ack nobody can find in
    the audit log. Now neither stands without the other."""
    api, incident_id = setup(tmp_path, monkeypatch, slack, actors={"users": [ALICE]})

    def store_gone(*args: Any, **kw: Any) -> None:
        raise RuntimeError("the process dies here")

    monkeypatch.setattr(api.vigil.store, "audit_in", store_gone)
    monkeypatch.setattr(api.vigil.store, "audit", store_gone)
    op = api.vigil.operator
    with pytest.raises(RuntimeError):
        op.acknowledge(incident_id, "alice", T0 + 60) if act == "ack" else \
            op.silence(incident_id, "alice", 3600.0, "OPS-1", T0 + 60)
    row = api.vigil.store.incident(incident_id)
    assert row.acknowledged_by is None and row.silenced_until is None, "acted without its audit entry"



def test_silence_on_a_message_drawn_before_an_escalation_mutes_the_severity_shown_not_the_new_one(
        tmp_path, monkeypatch, slack):
    """The button silenced the incident's severity at the press. Pressed on the warning
    message of an incident that had turned critical under a mute (a maintenance window, an
    inhibition: the escalation not told yet), it made `severity="critical"`, and when the
    mute ended the on-call's page was muted for 4 h by someone who only meant to quiet a
    warning. It now silences the severity people were last told: what the message shows."""
    from alerts.lifecycle import told_digest
    from monitor.store.repository import IncidentRow

    api, incident_id = setup(tmp_path, monkeypatch, slack, actors={"users": [ALICE]})
    with api.vigil.store.tx() as s:  # escalated since; people were told of the warning only
        row = s.get(IncidentRow, incident_id)
        row.severity, row.notified_digest = "critical", told_digest("d", "warning")
    url = slack.response_url()
    press(api, click("silence", incident_id, url))
    (made,) = api.client.get("/v1/silences").json()["items"]
    assert [m["text"] for m in made["matchers"]] == [f'model="{MODEL}"', 'severity="warning"'], made["matchers"]
    assert f"{MODEL} (warning)" in slack.responses(url)[-1]["text"]


def test_a_press_after_a_person_replaced_the_blamed_deploy_says_so_and_moves_nothing(tmp_path, monkeypatch, slack):
    """The page was drawn with "Roll back to v1" while v2 served; on-call then released v3 (a
    fix forward), and the incident, still blaming v2, says v3 replaced it (`replaced_by`). A
    press on the old message's button answered "Incident N no longer blames a deploy", which
    the page beside it contradicts ("Deploy of m v2 ... v2 no longer serves")."""
    import copy

    from monitor.store.repository import IncidentRow

    api, incident_id = setup(tmp_path, monkeypatch, slack, actors={"users": [ALICE]})
    api.deploy("3", T0 + 30)
    with api.vigil.store.tx() as s:  # as the correlator tells it once v3 took the alias
        row = s.get(IncidentRow, incident_id)
        causes = copy.deepcopy(row.causes)
        for c in causes:
            if c.get("kind") == "deploy":
                c["evidence"].update(replaced_by="3", replaced_at=T0 + 30, replaced_forward=True)
        row.causes = causes
    url = slack.response_url()
    old = click("rollback", incident_id, url)
    old["actions"][0]["block_id"] = "vigil_incident_actions:2:1"
    press(api, old)
    assert api.alias() == "3", "took the person's v3 out"
    told = slack.responses(url)[-1]["text"]
    assert "no longer blames a deploy" not in told, told
    assert "Nothing moved" in told and "v2 no longer serves" in told and "v3" in told, told
