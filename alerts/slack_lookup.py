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
"""
from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from typing import Any

from alerts.outbox import OutboxMessage

EVENT_TYPE = "vigil_message"
PAGE = 200  # Slack recommends 100-200 per page
MAX_PAGES = 10  # bounded: a channel busier than 2,000 messages since the row was written is not searched further
# Slack stamps ts with its own clock: a host clock that is a little off must not hide a post.
CLOCK_MARGIN_S = 300.0
_CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{6,}")

# call(method, channel label for errors, **arguments) -> the response (raises on ok:false)
SlackCall = Callable[..., Any]


def post_metadata(message: OutboxMessage) -> dict[str, Any]:
    """The metadata a post for `message` carries, so it can be found again."""
    return {"event_type": EVENT_TYPE, "event_payload": {"outbox_key": message.key, "outbox_id": message.id}}


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
        """`{"channel": ID, "ts": ts}` of the post for `message`, or None if there is none."""
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
        return None

    def channel_id(self, channel: str) -> str | None:
        """A channel ID for a name ("#recsys-alerts"); IDs pass through."""
        if _CHANNEL_ID.fullmatch(channel):
            return channel
        name = channel.lstrip("#")
        if name not in self._ids:
            self._learn_channels()
        return self._ids.get(name)

    def _learn_channels(self) -> None:
        args: dict[str, Any] = {"types": "public_channel,private_channel", "exclude_archived": True, "limit": 1000}
        for _ in range(MAX_PAGES):
            resp = self._call("conversations.list", None, **args)
            self._ids.update({c["name"]: c["id"] for c in resp.get("channels") or []})
            cursor = (resp.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return
            args["cursor"] = cursor
