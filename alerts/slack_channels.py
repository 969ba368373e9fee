"""Whether the bot can post where the configuration sends messages, asked before the first
incident (`vigil check-config`, `vigil run`'s start), as chat.postMessage would meet it:

- a channel ID: `conversations.info` (scope channels:read, groups:read for a private channel);
  `channel_not_found` for no such channel or a private one the bot is not in (Slack hides it);
- a name: `conversations.info` takes IDs only, so `conversations.list` (public and private
  channels; a bot sees the private ones it is in, with groups:read) finds it, with the same
  channel object;
- the channel object: archived -> `is_archived`; a private channel the bot is not in ->
  `channel_not_found`; a public one -> `not_in_channel` unless the token has
  chat:write.public (Slack: "send messages to channels your Slack app isn't a member of"),
  known from auth.test's `X-OAuth-Scopes` header; without that header Vigil cannot tell;
- a user ID (U…, W…): chat.postMessage's direct message with that person; not asked.

A check Slack does not allow (`missing_scope`, with the scope it `needed`), a 429 or a Slack
that cannot be reached says "cannot tell", never "wrong". Every call shares one deadline.
"""
from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.error import URLError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{6,}")
# chat.postMessage takes a user ID as `channel` too: the app's direct message with that person,
# which needs no membership; nothing to ask.
USER_ID = re.compile(r"[UW][A-Z0-9]{6,}")
LIST_PAGE = 1000  # conversations.list's largest page
MAX_PAGES = 10
_NEEDS_GROUPS_READ = "add the scope groups:read so Vigil can see it (a bot lists only the private channels it is in)"


@dataclass(frozen=True)
class ChannelCheck:
    """`error`: what chat.postMessage would answer (channel_not_found, not_in_channel,
    is_archived), with `fix`; `unsure`: why Slack could not tell; all None: it would post."""

    error: str | None = None
    fix: str = ""
    unsure: str | None = None


class _CannotTell(Exception):
    pass


def _judge(c: Mapping[str, Any], scopes: frozenset[str] | None) -> ChannelCheck:
    """What chat.postMessage would answer for the channel object `c`."""
    if c.get("is_archived"):
        return ChannelCheck("is_archived", "unarchive it or point the field at another channel")
    if c.get("is_member"):
        return ChannelCheck()
    if c.get("is_private"):
        return ChannelCheck("channel_not_found", "the channel is private: invite the bot (/invite @<bot>)")
    if scopes is not None and "chat:write.public" in scopes:
        return ChannelCheck()
    fix = "invite the bot (/invite @<bot>), or add the scope chat:write.public to the app and reinstall it"
    if scopes is None:
        return ChannelCheck(unsure=f"the bot is not a member, so posts fail with not_in_channel unless the app "
                                   f"has chat:write.public, which Slack did not say: {fix}")
    return ChannelCheck("not_in_channel", fix)


class ChannelChecker:
    """Checks channels with one client until `deadline` (monotonic seconds)."""

    def __init__(self, token: str, base_url: str, scopes: frozenset[str] | None, deadline: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._client = WebClient(token=token, base_url=base_url if base_url.endswith("/") else base_url + "/",
                                 retry_handlers=[])
        self._scopes, self._deadline, self._clock = scopes, deadline, clock
        self._names: dict[str, Mapping[str, Any]] | None = None  # name -> channel object, once listed
        self._private_hidden: str | None = None  # why a private channel may be missing from the list
        self._down: str | None = None  # Slack stopped answering: ask nothing more
        self._unlisted: str | None = None  # why the channel list could not be read

    def check(self, channel: str) -> ChannelCheck:
        if USER_ID.fullmatch(channel):
            return ChannelCheck()
        try:
            if CHANNEL_ID.fullmatch(channel):
                return self._by_id(channel)
            return self._by_name(channel.lstrip("#"))
        except _CannotTell as e:
            return ChannelCheck(unsure=str(e))

    def _call(self, method: str, **args: Any) -> Any:
        if self._down is not None:
            raise _CannotTell(self._down)
        left = self._deadline - self._clock()
        if left <= 0:
            raise _CannotTell("not asked: the start-up check's time ran out")
        self._client.timeout = max(1, math.ceil(left))
        try:
            return self._client.api_call(method, http_verb="GET", params=args)
        except SlackApiError as e:
            status = e.response.status_code if e.response is not None else None
            body = e.response.data if e.response is not None and isinstance(e.response.data, dict) else {}
            if status == 200 and body.get("error") == "missing_scope":
                raise _MissingScope(str(body.get("needed") or "?")) from None
            if status == 200 and body.get("error") == "channel_not_found":
                raise
            why = f"{method}: Slack answered HTTP {status} {body.get('error')}"
            if status == 429:  # asking on would only be refused again: the rest are not asked
                self._down = why
            raise _CannotTell(why) from None
        except (SlackClientError, URLError, TimeoutError, OSError) as e:
            self._down = f"Slack unreachable ({type(e).__name__})"
            raise _CannotTell(self._down) from None

    def _by_id(self, cid: str) -> ChannelCheck:
        try:
            resp = self._call("conversations.info", channel=cid)
        except _MissingScope as e:
            raise _CannotTell(f"conversations.info needs the scope {e.needed} to check it") from None
        except SlackApiError:
            return ChannelCheck("channel_not_found", "no such channel, or a private one the bot is not in: "
                                                     "fix the ID, or invite the bot (/invite @<bot>)")
        return _judge(resp.get("channel") or {}, self._scopes)

    def _by_name(self, name: str) -> ChannelCheck:
        if self._unlisted is not None:
            raise _CannotTell(self._unlisted)
        if self._names is None:
            try:
                self._names = self._list()
            except _CannotTell as e:
                self._unlisted = str(e)
                raise
        found = self._names.get(name)
        if found is not None:
            return _judge(found, self._scopes)
        if self._private_hidden is not None:
            raise _CannotTell(f"no public channel #{name}: fix the name, or, if it is a private channel the bot "
                              f"is in, {self._private_hidden}")
        return ChannelCheck("channel_not_found", "no channel of that name the bot can see: fix the name, "
                                                 "or invite the bot (/invite @<bot>) if the channel is private")

    def _list(self) -> dict[str, Mapping[str, Any]]:
        if self._scopes is not None and "groups:read" not in self._scopes:
            self._private_hidden = _NEEDS_GROUPS_READ
        try:
            return self._pages("public_channel,private_channel")
        except _MissingScope as e:
            if e.needed != "groups:read":
                raise _CannotTell(f"conversations.list needs the scope {e.needed} to check it") from None
        self._private_hidden = _NEEDS_GROUPS_READ
        try:
            return self._pages("public_channel")
        except _MissingScope as e:
            raise _CannotTell(f"conversations.list needs the scope {e.needed} to check it") from None

    def _pages(self, types: str) -> dict[str, Mapping[str, Any]]:
        out: dict[str, Mapping[str, Any]] = {}
        args: dict[str, Any] = {"types": types, "limit": LIST_PAGE}
        for _ in range(MAX_PAGES):
            resp = self._call("conversations.list", **args)
            out.update({c["name"]: c for c in resp.get("channels") or [] if isinstance(c, dict) and "name" in c})
            cursor = (resp.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return out
            args["cursor"] = cursor
        raise _CannotTell(f"conversations.list: more than {MAX_PAGES} pages of channels, not read further")


class _MissingScope(Exception):
    def __init__(self, needed: str) -> None:
        super().__init__(needed)
        self.needed = needed


def scopes_of(headers: Mapping[str, Any]) -> frozenset[str] | None:
    """The token's scopes from Slack's `X-OAuth-Scopes` header; None when it is absent."""
    raw = next((v for k, v in headers.items() if str(k).lower() == "x-oauth-scopes"), None)
    if raw is None:
        return None
    value = raw[0] if isinstance(raw, list) and raw else raw
    return frozenset(s.strip() for s in str(value).split(",") if s.strip())
