"""Finding a message Vigil already posted to Slack, by the outbox row it came from.

Every `chat.postMessage` carries message metadata naming its outbox row:
`{"event_type": "vigil_message", "event_payload": {"outbox_key": key, "outbox_id": id}}`.
When a sender died between posting and recording, the row's next sender reads the
channel's recent history (`conversations.history` with `include_all_metadata`, from the
row's creation time on; `conversations.replies` for a reply in a thread) and, if the post
is there, records it instead of posting a second copy.

Slack's contract (docs.slack.dev/reference/methods/conversations.history): a channel ID,
not a name (names are resolved once through `conversations.list`, scope channels:read);
scope channels:history (groups:history for private channels); Tier 3 (50+ a minute);
newest first; cursor pagination through `response_metadata.next_cursor`, empty at the end.

A search that ran out of pages with a cursor still left (a workspace with more channels
than MAX_PAGES list pages, a channel with more than MAX_PAGES x PAGE newer messages) has
not looked everywhere: it raises `CannotTell` instead of answering "not posted".
"""
from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from typing import Any

from alerts.outbox import DeliveryResult, DeliveryStatus, OutboxMessage

EVENT_TYPE = "vigil_message"
PAGE = 200  # Slack recommends 100-200 per page
MAX_PAGES = 10  # bounded: a channel busier than 2,000 messages since the row was written is not searched further
LIST_PAGE = 1000  # conversations.list's largest page
# Slack stamps ts with its own clock: a host clock that is a little off must not hide a post.
CLOCK_MARGIN_S = 300.0
_CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{6,}")
# An uncertain row whose lookup could not search everywhere waits for this many attempts
# (the sender's back-off: about 3.5 minutes), then is sent again: a possible second copy
# is better than an alert nobody sees.
CANNOT_TELL_ATTEMPTS = 3

# call(method, channel label for errors, **arguments) -> the response (raises on ok:false)
SlackCall = Callable[..., Any]


class CannotTell(Exception):
    """The search stopped before it had looked everywhere: the post may be there or not."""


def post_metadata(message: OutboxMessage) -> dict[str, Any]:
    """The metadata a post for `message` carries, so it can be found again."""
    return {"event_type": EVENT_TYPE, "event_payload": {"outbox_key": message.key, "outbox_id": message.id}}


def cannot_tell(message: OutboxMessage, why: str) -> DeliveryResult:
    """RETRY (look again later, do not send) for a few attempts, then FAILED, on which the
    sender sends it again: a second copy is possible, a lost alert is not."""
    if message.attempts <= CANNOT_TELL_ATTEMPTS:
        return DeliveryResult(DeliveryStatus.RETRY, error=f"Slack lookup cannot tell whether it was posted ({why}); "
                                                          f"looking again (attempt {message.attempts})")
    return DeliveryResult(DeliveryStatus.FAILED, error=f"Slack lookup cannot tell whether it was posted ({why}) "
                                                       f"after {message.attempts} attempts; sending it again, "
                                                       "a duplicate is possible")


def _is_post_of(found: Mapping[str, Any], message: OutboxMessage) -> bool:
    meta = found.get("metadata") or {}
    payload = meta.get("event_payload") or {}
    # The key as well as the id: another Vigil (another store) posting to the same channel
    # numbers its rows from 1 too.
    return (meta.get("event_type") == EVENT_TYPE and payload.get("outbox_id") == message.id
            and payload.get("outbox_key") == message.key)


class SlackLookup:
    """Reads a channel's recent history for one outbox row's post."""

    def __init__(self, call: SlackCall, wall: Callable[[], float] = time.time) -> None:
        self._call = call
        self._wall = wall
        self._ids: dict[str, str] = {}  # channel name -> ID, learned from conversations.list

    def find(self, message: OutboxMessage, channel: str, thread_ts: str | None = None) -> dict[str, Any] | None:
        """`{"channel": ID, "ts": ts}` of the post for `message`, or None if there is none.

        Raises CannotTell when its pages ran out before the search did."""
        cid = self.channel_id(channel)
        if cid is None:
            return None  # no such channel: nothing can have been posted there
        # The row's time is Vigil's clock (a replay clock in tests and benchmarks) and the
        # post's ts is Slack's: the earlier of the row's time and now, less a margin.
        created = message.created_at if message.created_at is not None else self._wall()
        args: dict[str, Any] = {"channel": cid, "include_all_metadata": True, "limit": PAGE,
                                "oldest": f"{min(created, self._wall()) - CLOCK_MARGIN_S:.6f}"}
        method = "conversations.history"
        if thread_ts:
            method, args["ts"] = "conversations.replies", thread_ts
        for _ in range(MAX_PAGES):
            resp = self._call(method, channel, **args)
            for m in resp.get("messages") or []:
                if _is_post_of(m, message):
                    return {"channel": cid, "ts": m["ts"]}
            cursor = (resp.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return None
            args["cursor"] = cursor
        raise CannotTell(f"{method} for {channel}: more than {MAX_PAGES * PAGE} messages since the row was "
                         "written, not searched further")

    def remember(self, channel: str, cid: str) -> None:
        """A name's ID as a post to it answered, so a later lookup need not list channels."""
        if not _CHANNEL_ID.fullmatch(channel) and _CHANNEL_ID.fullmatch(cid):
            self._ids[channel.lstrip("#")] = cid

    def channel_id(self, channel: str) -> str | None:
        """A channel ID for a name ("#recsys-alerts"); IDs pass through; None: no such channel.

        Raises CannotTell when the list had more pages than were read."""
        if _CHANNEL_ID.fullmatch(channel):
            return channel
        name = channel.lstrip("#")
        if name not in self._ids:
            self._learn_channels(name)
        return self._ids.get(name)

    def _learn_channels(self, name: str) -> None:
        args: dict[str, Any] = {"types": "public_channel,private_channel", "exclude_archived": True,
                                "limit": LIST_PAGE}
        for _ in range(MAX_PAGES):
            resp = self._call("conversations.list", None, **args)
            self._ids.update({c["name"]: c["id"] for c in resp.get("channels") or []})
            if name in self._ids:
                return  # found: the rest of a large workspace need not be read
            cursor = (resp.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return
            args["cursor"] = cursor
        # Slack's pages may hold fewer than `limit` channels (it filters after paging): a name
        # not seen yet may be on a later page.
        raise CannotTell(f"conversations.list: more than {MAX_PAGES} pages of channels, "
                         f"#{name} not among them")
