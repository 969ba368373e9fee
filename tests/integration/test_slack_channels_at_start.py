"""A Slack channel the bot cannot post to shows before the first incident: `vigil check-config`
fails naming the field, its line and the value (conversations.list for a name,
conversations.info for an ID); a check Slack's scopes do not allow is a warning naming the
scope; the daemon logs what it found and runs on. All against the local fake Slack."""
from __future__ import annotations

from pathlib import Path

from monitor.cli import main
from tests.fakes.slack_server import FakeSlack
from tests.integration.test_slack_token_at_start import run_briefly

TOKEN = "xoxb-right-token"
SCOPES = ("chat:write", "channels:read", "groups:read", "channels:history")


def _write(tmp_path: Path, base_url: str, owner: str, oncall: str = "#recsys-alerts", timeout_s: float = 3) -> Path:
    f = tmp_path / "vigil.yaml"
    f.write_text(f"""store: {{url: "sqlite:///{tmp_path / 'vigil.db'}"}}
spool: {{directory: spool}}
sources:
  prometheus: {{url: "http://127.0.0.1:9"}}
  mlflow: {{tracking_uri: "http://127.0.0.1:9"}}
slack:
  base_url: "{base_url}"
  timeout_s: {timeout_s}
  bot_token: ${{VIGIL_TEST_SLACK_TOKEN}}
models:
  - name: fraud
    owner_channel: "#recsys-alerts"
  - name: recommender
    owner_channel: "{owner}"
    oncall_channel: "{oncall}"
""")
    return f


def _check(tmp_path, capsys, slack: FakeSlack, owner: str, oncall: str = "#recsys-alerts") -> tuple[int, str]:
    f = _write(tmp_path, slack.base_url, owner, oncall)
    code = main(["check-config", str(f)])
    return code, capsys.readouterr().err


def test_a_channel_slack_does_not_know_fails_naming_the_field_its_line_and_value(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("VIGIL_TEST_SLACK_TOKEN", TOKEN)
    with FakeSlack(token=TOKEN, scopes=SCOPES) as slack:
        code, err = _check(tmp_path, capsys, slack, "#recsys-alert")
        assert {c.method for c in slack.calls()} == {"auth.test", "conversations.list"}
        assert not slack.messages(), "the check posts nothing"
    assert code == 1, err
    assert ":14: models[1](recommender).owner_channel: '#recsys-alert': channel_not_found" in err, err
    assert "#recsys-alerts" not in err.replace("'#recsys-alert'", ""), "the channels that exist pass"


def test_a_channel_id_is_asked_with_conversations_info(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("VIGIL_TEST_SLACK_TOKEN", TOKEN)
    with FakeSlack(token=TOKEN, scopes=SCOPES) as slack:
        hidden = slack.add_channel("ml-private", member=False, private=True)
        mine = slack.add_channel("ml-oncall", private=True)
        code, err = _check(tmp_path, capsys, slack, hidden, oncall=mine)
        assert [c.params["channel"] for c in slack.calls("conversations.info")] == [hidden, mine]
    assert code == 1, err
    assert f"models[1](recommender).owner_channel: '{hidden}': channel_not_found" in err, err
    assert "invite the bot" in err and "oncall_channel" not in err, err


def test_a_public_channel_the_bot_is_not_in_fails_unless_the_app_may_post_there(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("VIGIL_TEST_SLACK_TOKEN", TOKEN)
    with FakeSlack(token=TOKEN, scopes=SCOPES) as slack:
        slack.add_channel("ml-oncall", member=False)
        code, err = _check(tmp_path, capsys, slack, "#recsys-alerts", oncall="#ml-oncall")
    assert code == 1, err
    assert "models[1](recommender).oncall_channel: '#ml-oncall': not_in_channel" in err, err
    assert "/invite" in err and "chat:write.public" in err
    with FakeSlack(token=TOKEN, scopes=(*SCOPES, "chat:write.public")) as slack:
        slack.add_channel("ml-oncall", member=False)
        code, err = _check(tmp_path, capsys, slack, "#recsys-alerts", oncall="#ml-oncall")
    assert code == 0 and "ml-oncall" not in err, err


def test_an_archived_channel_fails(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("VIGIL_TEST_SLACK_TOKEN", TOKEN)
    with FakeSlack(token=TOKEN, scopes=SCOPES) as slack:
        slack.add_channel("old-alerts", archived=True)
        code, err = _check(tmp_path, capsys, slack, "#old-alerts")
    assert code == 1 and "owner_channel: '#old-alerts': is_archived" in err, err


def test_a_token_without_the_read_scope_only_warns_naming_the_scope(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("VIGIL_TEST_SLACK_TOKEN", TOKEN)
    with FakeSlack(token=TOKEN, scopes=("chat:write",)) as slack:
        cid = slack.channel_id("recsys-alerts")
        code, err = _check(tmp_path, capsys, slack, "#recsys-alert", oncall=cid)
    assert code == 0, err
    assert "warning: models[1](recommender).owner_channel: '#recsys-alert': could not check" in err, err
    assert "channels:read" in err


def test_the_default_channel_is_checked_when_a_model_has_no_owner_channel(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("VIGIL_TEST_SLACK_TOKEN", TOKEN)
    with FakeSlack(token=TOKEN, scopes=SCOPES) as slack:
        f = _write(tmp_path, slack.base_url, "#recsys-alerts")
        f.write_text(f.read_text() + "  - name: churn\n")
        code = main(["check-config", str(f)])
    err = capsys.readouterr().err
    assert code == 1 and "slack.default_channel: '#vigil-alerts': channel_not_found" in err, err


def test_the_daemon_logs_a_channel_it_cannot_post_to_and_runs_on(tmp_path, caplog, monkeypatch):
    monkeypatch.setenv("VIGIL_TEST_SLACK_TOKEN", TOKEN)
    with FakeSlack(token=TOKEN, scopes=SCOPES) as slack:
        lines, alive, result = run_briefly(_write(tmp_path, slack.base_url, "#recsys-alert"), caplog, cycles=True)
    errors = [x for x in lines if "channel_not_found" in x]
    assert errors and "models[1](recommender).owner_channel: '#recsys-alert'" in errors[0], lines
    assert alive and result == [0]


def test_a_rate_limited_or_stalled_channel_check_only_warns(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("VIGIL_TEST_SLACK_TOKEN", TOKEN)
    with FakeSlack(token=TOKEN, scopes=SCOPES) as slack:
        slack.force(429, method="conversations.list", retry_after=30)
        code, err = _check(tmp_path, capsys, slack, "#recsys-alert")
    assert code == 0, err
    assert "models[0](fraud).owner_channel: '#recsys-alerts': could not check the channel" in err, err
    assert "HTTP 429 ratelimited" in err


def test_a_user_id_is_a_direct_message_and_is_not_asked_about(tmp_path, capsys, monkeypatch):
    """chat.postMessage takes a user ID (U…/W…) as `channel`: the app's direct message with them."""
    monkeypatch.setenv("VIGIL_TEST_SLACK_TOKEN", TOKEN)
    with FakeSlack(token=TOKEN, scopes=SCOPES) as slack:
        code, err = _check(tmp_path, capsys, slack, "U0123ABCD")
        assert not slack.calls("conversations.info")
    assert code == 0 and "U0123ABCD" not in err, err


def test_after_a_429_the_other_channels_are_not_asked(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("VIGIL_TEST_SLACK_TOKEN", TOKEN)
    with FakeSlack(token=TOKEN, scopes=SCOPES) as slack:
        a, b = slack.channel_id("recsys-alerts"), slack.add_channel("ml-oncall")
        slack.force(429, count=5, method="conversations.info", retry_after=30)
        code, err = _check(tmp_path, capsys, slack, a, oncall=b)
        assert len(slack.calls("conversations.info")) == 1, "one refusal is enough"
    assert code == 0 and err.count("HTTP 429 ratelimited") == 2, err
