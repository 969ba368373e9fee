"""The Slack calls besides the outbox's message updates: the two a button press makes, and
the token check at start.

- `usergroups.users.list` (scope usergroups:read; Tier 2; GET with `usergroup`, answers
  `{"ok": true, "users": ["U…", ...]}` or `ok: false` with `no_such_subteam`,
  `missing_scope`, `plan_upgrade_required`, ...): who is in a user group.
- The press's `response_url` (a JSON POST, valid for 30 minutes and a few uses): the
  result for the person who pressed, as an ephemeral message (`response_type:
  ephemeral`, `replace_original: false`), since Slack ignores the body of the 200 that
  acknowledges a `block_actions` request.
- `auth.test` (no scope; POST, answers `{"ok": true, "url", "team", "user", "team_id",
  "user_id", "bot_id"}` or `ok: false` with `invalid_auth`, `not_authed`, `token_revoked`,
  `account_inactive`, ...): whether Slack takes the bot token, asked by `vigil check-config`
  and at the daemon's start so a wrong token shows before the first incident.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from urllib.error import URLError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.webhook import WebhookClient

from alerts.slack_authz import GroupLookupFailed
from alerts.slack_channels import scopes_of

log = logging.getLogger("vigil.alerts.slack")
# Slack's answers that say the token itself is wrong: no retry makes it right.
AUTH_ERRORS = frozenset({"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive"})
# A message refused for the token is tried again this often, not on the outbox's back-off (up to an
# hour): a person fixes the token at any moment, and what waited goes out minutes after.
AUTH_RETRY_S = 300.0
# The start-up check (`vigil check-config`, the daemon's start) waits at most this long for Slack,
# whatever `slack.timeout_s` says: Slack answers auth.test in well under a second, so a longer wait
# only says Slack is unreachable, which the warning says anyway, while a person at `check-config`
# sat out the whole timeout (60 s with `timeout_s: 60`). Messages keep `slack.timeout_s`.
START_CHECK_S = 5.0


@dataclass(frozen=True)
class TokenCheck:
    """`auth.test`'s verdict: `rejected` is Slack's error for a token it refused; `unsure` says
    why Slack could not tell (down, rate limited, another error); `who` names the bot when taken;
    `scopes` are the token's (Slack's `X-OAuth-Scopes` header), None when Slack did not say."""

    rejected: str | None = None
    unsure: str | None = None
    who: str = ""
    scopes: frozenset[str] | None = None


def check_token(token: str, base_url: str, timeout_s: float) -> TokenCheck:
    """Ask Slack's `auth.test` once (no retry: at start a slow Slack must not hold anything up),
    waiting at most `START_CHECK_S` (or `timeout_s`, when shorter)."""
    client = WebClient(token=token, base_url=base_url if base_url.endswith("/") else base_url + "/",
                       timeout=max(1, round(min(timeout_s, START_CHECK_S))), retry_handlers=[])
    try:
        resp = client.auth_test()
    except SlackApiError as e:
        status = e.response.status_code if e.response is not None else None
        error = str(e.response.get("error") if e.response is not None else None)
        if status == 200 and error in AUTH_ERRORS:
            return TokenCheck(rejected=error)
        return TokenCheck(unsure=f"Slack answered HTTP {status} {error}")
    except (SlackClientError, URLError, TimeoutError, OSError) as e:
        return TokenCheck(unsure=f"Slack unreachable ({type(e).__name__}: {e})")
    return TokenCheck(who=f"bot {resp.get('user') or '?'} ({resp.get('bot_id') or 'no bot_id'}) "
                          f"in workspace {resp.get('team') or '?'} ({resp.get('team_id') or '?'})",
                      scopes=scopes_of(resp.headers or {}))


def group_fetcher(client: WebClient | None) -> Callable[[str], list[str]]:
    """`fetch(group) -> user IDs` through `client`; GroupLookupFailed says why it could not."""

    def fetch(group: str) -> list[str]:
        if client is None:
            raise GroupLookupFailed(f"cannot read <!subteam^{group}>: slack.bot_token is not set")
        try:
            resp = client.usergroups_users_list(usergroup=group)
        except SlackApiError as e:
            error = e.response.get("error") if e.response is not None else None
            hint = " (the bot token needs scope usergroups:read)" if error == "missing_scope" else ""
            raise GroupLookupFailed(f"cannot read <!subteam^{group}>: Slack said {error}{hint}") from None
        except (SlackClientError, URLError, TimeoutError, OSError) as e:
            raise GroupLookupFailed(f"cannot read <!subteam^{group}>: Slack unreachable "
                                    f"({type(e).__name__})") from None
        users = resp.get("users")
        if not isinstance(users, list):
            raise GroupLookupFailed(f"cannot read <!subteam^{group}>: no user list in Slack's answer")
        return [u for u in users if isinstance(u, str)]

    return fetch


def reply_ephemeral(response_url: str, text: str, timeout_s: float) -> bool:
    """Tell the person who pressed; False (logged) when Slack did not take it."""
    try:
        resp = WebhookClient(response_url, timeout=max(1, round(timeout_s))).send(
            text=text, response_type="ephemeral", replace_original=False)
    except (SlackClientError, URLError, TimeoutError, OSError) as e:
        log.warning("Slack response_url unreachable (%s): the person who pressed sees no result", e)
        return False
    if resp.status_code != 200:
        log.warning("Slack refused the response_url reply: HTTP %s %s", resp.status_code, resp.body[:200])
        return False
    return True
