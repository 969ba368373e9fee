"""A Slack bot token Slack rejects shows before the first incident: `vigil check-config` fails
naming the variable it comes from and what Slack's auth.test said; the daemon logs it as an
error and runs on; a Slack that cannot answer (429, down) is only a warning."""
from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest

from monitor.cli import main
from monitor.config import load_config
from monitor.daemon import run_daemon
from tests.fakes.slack_server import FakeSlack
from tests.fixtures_mlflow import closed_port_url
from tests.helpers_vigil import make_vigil

TOKEN = "xoxb-right-token"


def _write(tmp_path: Path, base_url: str, timeout_s: float = 3) -> Path:
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
  - name: recommender
""")
    return f


@pytest.mark.parametrize("error", ["invalid_auth", "token_revoked", "account_inactive", "not_authed"])
def test_check_config_fails_on_a_token_slack_rejects_naming_its_variable(tmp_path, capsys, monkeypatch, error):
    monkeypatch.setenv("VIGIL_TEST_SLACK_TOKEN", "xoxb-wrong-secret-123")
    with FakeSlack(token=TOKEN) as slack:
        if error != "invalid_auth":  # the fake answers invalid_auth for a token it does not know
            slack.token = "xoxb-wrong-secret-123"
            slack.force(200, error=error, method="auth.test")
        f = _write(tmp_path, slack.base_url)
        assert main(["check-config", str(f)]) == 1
        assert [c.method for c in slack.calls()] == ["auth.test"]
    err = capsys.readouterr().err
    assert f"{f}:9: $VIGIL_TEST_SLACK_TOKEN (slack.bot_token): Slack's auth.test answered {error}" in err, err
    assert "xoxb-wrong-secret-123" not in err


def test_check_config_passes_a_token_slack_takes(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("VIGIL_TEST_SLACK_TOKEN", TOKEN)
    with FakeSlack(token=TOKEN) as slack:
        assert main(["check-config", str(_write(tmp_path, slack.base_url))]) == 0
        assert [(c.method, c.error) for c in slack.calls()] == [("auth.test", None), ("conversations.list", None)], \
            "then the channels (tests/integration/test_slack_channels_at_start.py)"
    assert "auth.test" not in capsys.readouterr().err


def test_check_config_only_warns_when_slack_cannot_answer(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("VIGIL_TEST_SLACK_TOKEN", TOKEN)
    with FakeSlack(token=TOKEN) as slack:
        slack.force(429, method="auth.test", retry_after=30)
        assert main(["check-config", str(_write(tmp_path, slack.base_url))]) == 0
    err = capsys.readouterr().err
    assert "warning: $VIGIL_TEST_SLACK_TOKEN (slack.bot_token): could not check the token" in err, err
    assert "HTTP 429 ratelimited" in err
    assert main(["check-config", str(_write(tmp_path, closed_port_url() + "/api/"))]) == 0
    assert "could not check the token with Slack's auth.test (Slack unreachable" in capsys.readouterr().err


def test_check_config_offline_does_not_ask_slack(tmp_path, monkeypatch):
    monkeypatch.setenv("VIGIL_TEST_SLACK_TOKEN", "xoxb-wrong")
    with FakeSlack(token=TOKEN) as slack:
        assert main(["check-config", "--offline", str(_write(tmp_path, slack.base_url))]) == 0
        assert slack.calls() == []


def run_briefly(config_path: Path, caplog, cycles: bool) -> tuple[list[str], bool, list[int]]:
    """`vigil run` (cycles) or `vigil serve` (none) on `config_path` until its first error line (10 s
    at most) and 0.3 s more: its warning and error lines, whether it was still running, its exit code."""
    vigil = make_vigil(load_config(config_path), notifiers=None)
    stop, result = threading.Event(), []
    worker = threading.Thread(target=lambda: result.append(run_daemon(
        vigil.config, serve_api=False, vigil=vigil, stop=stop, config_path=str(config_path), cycles=cycles)),
        daemon=True)
    with caplog.at_level(logging.INFO, logger="vigil"):
        worker.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not [r for r in caplog.records if r.levelno == logging.ERROR]:
            time.sleep(0.05)
        time.sleep(0.3)
        alive = worker.is_alive()
        stop.set()
        worker.join(timeout=15)
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING], alive, result


def test_the_daemon_logs_a_rejected_token_as_an_error_and_runs_on(tmp_path, caplog, monkeypatch):
    monkeypatch.setenv("VIGIL_TEST_SLACK_TOKEN", "xoxb-wrong-secret-123")
    with FakeSlack(token=TOKEN) as slack:
        lines, alive, result = run_briefly(_write(tmp_path, slack.base_url), caplog, cycles=True)
        assert slack.calls("auth.test")
    [error] = [x for x in lines if "auth.test" in x]
    assert "$VIGIL_TEST_SLACK_TOKEN (slack.bot_token): Slack's auth.test answered invalid_auth" in error
    assert alive and result == [0], "the daemon runs on, and stops as asked"
    assert "xoxb-wrong-secret-123" not in caplog.text


def test_a_slack_that_never_answers_holds_check_config_only_a_few_seconds(tmp_path, capsys, monkeypatch,
                                                                           silent_server):
    """slack.timeout_s is 60 here: the start-up check waits at most its own cap, then warns."""
    monkeypatch.setenv("VIGIL_TEST_SLACK_TOKEN", TOKEN)
    f = _write(tmp_path, silent_server.url + "/api/", timeout_s=60)
    t0 = time.monotonic()
    code = main(["check-config", str(f)])
    took = time.monotonic() - t0
    err = capsys.readouterr().err
    assert code == 0 and "could not check the token" in err, err
    assert took < 10, f"check-config waited {took:.1f} s for a Slack that never answers"


def test_vigil_serve_logs_a_rejected_token_and_runs_on(tmp_path, caplog, monkeypatch):
    monkeypatch.setenv("VIGIL_TEST_SLACK_TOKEN", "xoxb-wrong-secret-123")
    with FakeSlack(token=TOKEN) as slack:
        lines, alive, result = run_briefly(_write(tmp_path, slack.base_url), caplog, cycles=False)
        assert slack.calls("auth.test")
    assert any("$VIGIL_TEST_SLACK_TOKEN (slack.bot_token): Slack's auth.test answered invalid_auth" in x
               for x in lines), lines
    assert alive and result == [0], "vigil serve runs on"
    assert "xoxb-wrong-secret-123" not in caplog.text
