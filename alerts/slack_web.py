"""The two Slack calls a button press makes besides the outbox's message updates.

- `usergroups.users.list` (scope usergroups:read; Tier 2; GET with `usergroup`, answers
  `{"ok": true, "users": ["U…", ...]}` or `ok: false` with `no_such_subteam`,
  `missing_scope`, `plan_upgrade_required`, ...): who is in a user group.
- The press's `response_url` (a JSON POST, valid for 30 minutes and a few uses): the
  result for the person who pressed, as an ephemeral message (`response_type:
  ephemeral`, `replace_original: false`), since Slack ignores the body of the 200 that
  acknowledges a `block_actions` request.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from urllib.error import URLError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.webhook import WebhookClient

from alerts.slack_authz import GroupLookupFailed

log = logging.getLogger("vigil.alerts.slack")


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
