"""Read methods of the local Slack server: conversations.history, conversations.replies and
conversations.list, as pure functions over what the server holds.

Sources (read 2026-12): docs.slack.dev/reference/methods/conversations.history (GET or
POST; scopes channels:history / groups:history; Tier 3, 50+ per minute; arguments
channel, cursor, include_all_metadata, inclusive, latest, limit, oldest),
docs.slack.dev/apis/web-api/pagination (cursor/limit; `response_metadata.next_cursor`,
empty when there is nothing more; do not infer the end from a short page), and the
method descriptions of Slack's published API docs (methods/conversations.history.json,
.replies.json, .list.json: "Maximum of 999" for history's limit, "no larger than 1000"
for list's; errors channel_not_found, invalid_cursor, invalid_ts_latest,
invalid_ts_oldest, thread_not_found, invalid_limit).

- history: the channel's top-level messages (thread replies are not in it), newest
  first; `oldest` (default 0) and `latest` (default now) bound the range, exclusive
  unless `inclusive`; `limit` default 100, at most 999 (more is capped); `has_more`
  and, when it is true, `response_metadata.next_cursor` (base64 of "next_ts:<ts>", the
  shape Slack's own cursors decode to); `metadata` only with `include_all_metadata`.
- replies: the thread's parent first, then its replies oldest first, same range and
  cursor rules; `thread_not_found` when `ts` is not a message of the channel.
- list: channels of the `types` asked (default public_channel; private_channel lists the
  private channels the bot is in, with groups:read; without it they are left out
  [assumed: the docs do not say whether Slack refuses or omits]), `exclude_archived`, limit
  default 100, at most 1000, cursor "dGVhbTo..."-style (base64 of "team:<id>").
- info (docs.slack.dev/reference/methods/conversations.info: `channel` is a conversation
  ID; scopes channels:read / groups:read; Tier 3): `{"ok": true, "channel": {...}}` with
  `id`, `name`, `is_channel`, `is_group`, `is_im`, `is_private`, `is_archived`,
  `is_member`, as in the method's example; errors channel_not_found, missing_scope.

Choices the docs leave open, marked so: a limit over the maximum is capped rather than
refused [assumed]; booleans accept true/false/1/0 as slack-sdk sends them [observed:
slack-sdk turns bools into "1"/"0" on GET].
"""
from __future__ import annotations

import base64
import binascii
import json
from decimal import Decimal, InvalidOperation
from typing import Any

HISTORY_LIMIT = (100, 999)  # default, maximum
REPLIES_LIMIT = (1000, 1000)  # [assumed]: the docs give no figure for replies
LIST_LIMIT = (100, 1000)


class ApiError(Exception):
    """An `ok: false` answer: `error` is Slack's code."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


def flag(params: dict[str, Any], name: str) -> bool:
    return str(params.get(name, "")).lower() in ("1", "true")


def _ts(value: Any, error: str) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise ApiError(error) from None


def _limit(params: dict[str, Any], bounds: tuple[int, int]) -> int:
    raw = params.get("limit")
    if raw in (None, ""):
        return bounds[0]
    try:
        n = int(raw)
    except (TypeError, ValueError):
        raise ApiError("invalid_limit") from None
    return max(1, min(n, bounds[1]))


def _cursor(params: dict[str, Any], prefix: str) -> str | None:
    raw = params.get("cursor")
    if not raw:
        return None
    try:
        text = base64.b64decode(str(raw), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise ApiError("invalid_cursor") from None
    if not text.startswith(prefix):
        raise ApiError("invalid_cursor")
    return text[len(prefix):]


def _next_cursor(prefix: str, value: str) -> str:
    return base64.b64encode(f"{prefix}{value}".encode()).decode()


def _in_range(ts: str, params: dict[str, Any], now: float) -> bool:
    oldest = _ts(params.get("oldest"), "invalid_ts_oldest") or Decimal(0)
    latest = _ts(params.get("latest"), "invalid_ts_latest") or Decimal(str(now))
    t = Decimal(ts)
    if flag(params, "inclusive"):
        return oldest <= t <= latest
    return oldest < t < latest


def history(messages: list[dict[str, Any]], params: dict[str, Any], now: float) -> dict[str, Any]:
    """One page of a channel's history; `messages` are its top-level messages, any order."""
    limit = _limit(params, HISTORY_LIMIT)
    start = _cursor(params, "next_ts:")
    hits = sorted((m for m in messages if _in_range(m["ts"], params, now)), key=lambda m: Decimal(m["ts"]),
                  reverse=True)
    if start is not None:
        hits = [m for m in hits if Decimal(m["ts"]) <= Decimal(start)]
    page, rest = hits[:limit], hits[limit:]
    body: dict[str, Any] = {"ok": True, "messages": page, "has_more": bool(rest), "pin_count": 0,
                            "channel_actions_ts": None, "channel_actions_count": 0}
    if rest:
        body["response_metadata"] = {"next_cursor": _next_cursor("next_ts:", rest[0]["ts"])}
    return body


def replies(parent: dict[str, Any], thread: list[dict[str, Any]], params: dict[str, Any],
            now: float) -> dict[str, Any]:
    """One page of a thread: the parent first, then replies oldest first."""
    limit = _limit(params, REPLIES_LIMIT)
    start = _cursor(params, "next_ts:")
    hits = sorted((m for m in thread if _in_range(m["ts"], params, now)), key=lambda m: Decimal(m["ts"]))
    # The parent heads the first page; a cursor points into the replies.
    hits = [m for m in hits if Decimal(m["ts"]) >= Decimal(start)] if start is not None else [parent, *hits]
    page, rest = hits[:limit], hits[limit:]
    body: dict[str, Any] = {"ok": True, "messages": page, "has_more": bool(rest)}
    if rest:
        body["response_metadata"] = {"next_cursor": _next_cursor("next_ts:", rest[0]["ts"])}
    return body


def channel_list(channels: dict[str, dict[str, Any]], params: dict[str, Any]) -> dict[str, Any]:
    """One page of conversations.list over {id: {"name", "member", "archived"}}."""
    types = {t.strip() for t in str(params.get("types") or "public_channel").split(",") if t.strip()}
    if not types <= {"public_channel", "private_channel", "mpim", "im"}:
        raise ApiError("invalid_types")
    limit = _limit(params, LIST_LIMIT)
    start = _cursor(params, "team:")
    rows = [channel_object(cid, c) for cid, c in sorted(channels.items())
            if ("private_channel" in types and c.get("private") and c["member"])
            or ("public_channel" in types and not c.get("private"))]
    rows = [r for r in rows if not (r["is_archived"] and flag(params, "exclude_archived"))]
    if start is not None:
        rows = [r for r in rows if r["id"] >= start]
    page, rest = rows[:limit], rows[limit:]
    return {"ok": True, "channels": page,
            "response_metadata": {"next_cursor": _next_cursor("team:", rest[0]["id"]) if rest else ""}}


def channel_object(cid: str, c: dict[str, Any]) -> dict[str, Any]:
    """A channel as conversations.list and conversations.info describe it."""
    return {"id": cid, "name": c["name"], "is_channel": True, "is_group": False, "is_im": False,
            "is_private": bool(c.get("private")), "is_archived": c["archived"], "is_member": c["member"],
            "name_normalized": c["name"]}


def metadata(raw: Any) -> dict[str, Any] | None:
    """chat.postMessage's `metadata`: {"event_type": str, "event_payload": object}."""
    if raw is None:
        return None
    if isinstance(raw, str):  # form-encoded bodies carry it as a JSON string
        try:
            raw = json.loads(raw)
        except ValueError:
            raise ApiError("invalid_metadata_format") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("event_type"), str) \
            or not isinstance(raw.get("event_payload"), dict):
        raise ApiError("invalid_metadata_schema")
    return {"event_type": raw["event_type"], "event_payload": raw["event_payload"]}
