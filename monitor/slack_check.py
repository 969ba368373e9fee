"""Slack's word on the bot token before the first incident: `vigil check-config` fails on a
token Slack rejects (`auth.test`: invalid_auth, not_authed, token_revoked, account_inactive),
naming the variable the file reads it from; the daemon logs it as an error at start and
runs on. A Slack that cannot answer now (down, 429) is a warning in both, never a refusal.
A wrong token used to show only at the first incident, as a failed message.

With the token taken, each channel messages go to (`models[].owner_channel`,
`models[].oncall_channel`, and `slack.default_channel` when a model has no owner_channel) is
asked as chat.postMessage would meet it (alerts/slack_channels.py): one it would refuse
(channel_not_found, not_in_channel, is_archived) fails check-config naming the field, its line
and the value, and is an error line at the daemon's start; one Slack does not let Vigil check
(missing_scope: the scope is named), or cannot answer now, is a warning. All of it waits at
most `START_CHECK_S` (5 s) in all, whatever `slack.timeout_s`: a Slack that drops packets
must not hold a person at check-config, and the daemon asks beside its start anyway."""
from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import NamedTuple

from alerts.slack_channels import ChannelCheck, ChannelChecker
from alerts.slack_web import START_CHECK_S, TokenCheck, check_token
from monitor.config import ConfigError, VigilConfig
from monitor.config_env import parse_ref
from monitor.config_errors import Loc
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


class SlackProblem(NamedTuple):
    """One thing Slack said: `level` "error" (what `vigil run` would fail at) or "warning"; `loc`
    the key in the file; `path` the field as a person reads it ("" when `message` names it)."""

    level: str
    loc: Loc
    path: str
    message: str

    def text(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


def _token_problem(verdict: TokenCheck, config_path: str | None) -> tuple[str, str] | None:
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


def slack_problems(config: VigilConfig, config_path: str | None, *, channels: bool = True) -> list[SlackProblem]:
    """What Slack says of the token and (`channels`) of each channel messages go to, in at most
    `START_CHECK_S`; empty when all is well or no token is set."""
    s = config.slack
    if not s.bot_token:
        return []
    deadline = time.monotonic() + START_CHECK_S
    verdict = check_token(s.bot_token, s.base_url, s.timeout_s)
    token = _token_problem(verdict, config_path)
    if token is not None:
        return [SlackProblem(token[0], KEY, "", token[1])]
    if not channels:
        return []
    checker = ChannelChecker(s.bot_token, s.base_url, verdict.scopes, deadline)
    out = []
    for value, fields in configured_channels(config).items():
        problem = _channel_problem(value, fields, checker.check(value))
        if problem is not None:
            out.append(problem)
    return out


def configured_channels(config: VigilConfig) -> dict[str, list[tuple[Loc, str]]]:
    """Each channel messages go to -> the fields that name it (key in the file, as read)."""
    out: dict[str, list[tuple[Loc, str]]] = {}
    for i, m in enumerate(config.models):
        for key in ("owner_channel", "oncall_channel"):
            value = getattr(m, key)
            if value:
                out.setdefault(value, []).append((("models", i, key), f"models[{i}]({m.name}).{key}"))
    if not config.models or any(not m.owner_channel for m in config.models):  # it has their warnings
        out.setdefault(config.slack.default_channel, []).append((("slack", "default_channel"),
                                                                 "slack.default_channel"))
    return out


def _channel_problem(value: str, fields: list[tuple[Loc, str]], check: ChannelCheck) -> SlackProblem | None:
    (loc, path), others = fields[0], [p for _, p in fields[1:]]
    also = ""
    if others:
        also = f" (also {', '.join(others[:3])}{f' and {len(others) - 3} more' if len(others) > 3 else ''})"
    if check.error is not None:
        return SlackProblem("error", loc, path, f"{value!r}: {check.error}: messages there would fail{also}; "
                                                f"{check.fix}")
    if check.unsure is not None:
        return SlackProblem("warning", loc, path, f"{value!r}: could not check the channel{also}: {check.unsure}")
    return None


def check_slack_in_background(config: VigilConfig, config_path: str | None, *,
                              channels: bool = True) -> threading.Thread:
    """For the daemon: ask Slack beside the start-up (a slow Slack never delays it), log what it
    said. `channels=False` (`vigil serve`, which posts nothing): the token only."""

    def run() -> None:
        try:
            problems = slack_problems(config, config_path, channels=channels)
        except Exception:  # a check, never a reason to stop
            log.exception("checking Slack failed")
            return
        for p in problems:
            what = "slack token" if p.loc == KEY else "slack channel"
            log.log(logging.ERROR if p.level == "error" else logging.WARNING, "%s: %s", what, p.text())

    thread = threading.Thread(target=run, name="vigil-slack-check", daemon=True)
    thread.start()
    return thread
