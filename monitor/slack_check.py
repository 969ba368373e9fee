"""Slack's word on the bot token before the first incident: `vigil check-config` fails on a
token Slack rejects (`auth.test`: invalid_auth, not_authed, token_revoked, account_inactive),
naming the variable the file reads it from; the daemon logs it as an error at start and
runs on. A Slack that cannot answer now (down, 429) is a warning in both, never a refusal.
A wrong token used to show only at the first incident, as a failed message."""
from __future__ import annotations

import logging
import threading
from pathlib import Path

from alerts.slack_web import TokenCheck, check_token
from monitor.config import ConfigError, VigilConfig
from monitor.config_env import parse_ref
from monitor.config_types import whole_ref
from monitor.config_yaml import read_yaml

log = logging.getLogger("vigil.daemon")
KEY = ("slack", "bot_token")
_FIX = {
    "invalid_auth": "Slack does not know this token: set it to the app's Bot User OAuth Token (xoxb-...) "
                    "from OAuth & Permissions",
    "not_authed": "no token reached Slack: set it to the app's Bot User OAuth Token (xoxb-...)",
    "token_revoked": "the token was revoked (the app uninstalled or the token rotated): reinstall the app "
                     "and set the new Bot User OAuth Token",
    "token_expired": "the token expired (token rotation is on): set a fresh Bot User OAuth Token",
    "account_inactive": "the bot's user or its workspace is deactivated: reinstall the app in an active "
                        "workspace and set its Bot User OAuth Token",
}


def token_source(config_path: str | None) -> str:
    """Where the bot token comes from, as the file says: `$SLACK_BOT_TOKEN (slack.bot_token)`."""
    try:
        raw = read_yaml(Path(config_path)).data["slack"]["bot_token"] if config_path else None
    except (ConfigError, KeyError, TypeError):
        raw = None
    body = whole_ref(raw) if isinstance(raw, str) else None
    try:
        return f"${parse_ref(body).name} (slack.bot_token)" if body is not None else "slack.bot_token"
    except ValueError:
        return "slack.bot_token"


def slack_token_problem(config: VigilConfig, config_path: str | None) -> tuple[str, str] | None:
    """("error", why) when Slack rejected the token, ("warning", why) when it could not say; None
    when it took it or no token is set (the JSON-lines sink, announced at start)."""
    s = config.slack
    if not s.bot_token:
        return None
    verdict: TokenCheck = check_token(s.bot_token, s.base_url, s.timeout_s)
    where = token_source(config_path)
    if verdict.rejected is not None:
        fix = _FIX.get(verdict.rejected, "set a valid Bot User OAuth Token (xoxb-...)")
        return "error", (f"{where}: Slack's auth.test answered {verdict.rejected}: {fix}; until then no "
                         "alert reaches Slack (they wait in the outbox, `vigil outbox list`, and go out once "
                         "it is fixed)")
    if verdict.unsure is not None:
        return "warning", (f"{where}: could not check the token with Slack's auth.test ({verdict.unsure}); "
                           "it is checked again when a message is sent")
    log.info("slack token accepted", extra={"slack": verdict.who})
    return None


def check_slack_in_background(config: VigilConfig, config_path: str | None) -> threading.Thread:
    """For the daemon: ask Slack beside the start-up (a slow Slack never delays it), log what it said."""

    def run() -> None:
        try:
            problem = slack_token_problem(config, config_path)
        except Exception:  # a check, never a reason to stop
            log.exception("checking the Slack token failed")
            return
        if problem is not None:
            level, why = problem
            log.log(logging.ERROR if level == "error" else logging.WARNING, "slack token: %s", why)

    thread = threading.Thread(target=run, name="vigil-slack-check", daemon=True)
    thread.start()
    return thread
