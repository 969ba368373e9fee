"""A small local Slack Web API server for tests, following contracts/README.md section 6.

- POST /api/chat.postMessage, /api/chat.update, /api/auth.test; JSON or form bodies.
  auth.test (contracts §6, "auth.test") needs no scope and answers the bot's identity
  (`url`, `team`, `user`, `team_id`, `user_id`, `bot_id`, `is_enterprise_install`), or
  `not_authed` / `invalid_auth` as below; `force(200, error="token_revoked" |
  "account_inactive", method="auth.test")` makes the token's other rejections.
  A post's `metadata` ({"event_type", "event_payload"}) is kept with the message.
- GET (query string) or POST: /api/conversations.history, /api/conversations.replies,
  /api/conversations.list, /api/conversations.info, following Slack's documented contract
  (tests/fakes/slack_history.py says what and where from): newest first,
  oldest/latest/inclusive, limit, cursor pagination, `metadata` only with
  include_all_metadata; a channel ID, never a name. conversations.info answers a public
  channel the bot is not in (`is_member: false`) and an archived one (`is_archived: true`);
  a private channel (`add_channel(..., private=True)`) only to a member, else
  `channel_not_found`, as Slack hides it; its scope is channels:read for a public channel,
  groups:read for a private one.
- Channel membership, as chat.postMessage meets it (docs: the chat:write.public scope "send
  messages to channels your Slack app isn't a member of"): a public channel the bot is not
  in answers `not_in_channel` unless the token has chat:write.public; a private one
  `channel_not_found`.
- Every answer to a known token carries `X-OAuth-Scopes: <scope>, <scope>` (Slack's
  "working with scopes": the token's scopes in a header of every Web API response).
- `Authorization: Bearer <token>` (or a `token` form field): `not_authed` without one,
  `invalid_auth` for a wrong one, `missing_scope` (with `needed`/`provided`) without the
  method's scope (chat:write; channels:history; channels:read).
- Logical errors are HTTP 200 with `{"ok": false, "error": ...}`: channel_not_found,
  not_in_channel, is_archived, invalid_blocks (with `errors` and json-pointers),
  msg_too_long, no_text, message_not_found.
- Rate limits: a token bucket per (method, channel) (chat.postMessage: 1/s, small
  bursts), per method for the reads (history and replies Tier 3: 50 a minute; list
  Tier 2: 20 a minute); over it, HTTP 429 with an integer `Retry-After` and
  `{"ok":false,"error":"ratelimited"}`.
- GET (query string) or form POST /api/usergroups.users.list (scope usergroups:read, Tier 2:
  20 a minute): `{"ok": true, "users": [...]}` for a group added with `add_usergroup`,
  `no_such_subteam` for another ID; the method takes no JSON body (Slack: "does not
  currently accept application/json"), so JSON arguments are not read.
- A `response_url` receiver (`response_url()` makes one): JSON POSTs to
  /actions/<team>/<n>/<secret> are kept (`responses()`) and answered 200
  `{"ok": true}`; Slack allows a response_url 5 uses within 30 minutes, so a sixth use
  or an unknown URL gets 404 `{"ok": false, "error": "used_url" | "invalid_url"}`
  [knowledge: the error names are not from a published contract].
- Faults on demand: `force(429 | 500 | 503, count=N)`, `force(200, error="internal_error")`, `delay(s)`,
  `drop(count=N)`: the request is acted on, then the connection closes without an answer
  (an answer lost on its way back: the client sees RemoteDisconnected).
- Everything posted or updated is kept (`messages()`), with each version, for assertions.

Binds 127.0.0.1 on a free port; start with `with FakeSlack() as slack:` and give
`slack.base_url` to the client.
"""
from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.local_http import LocalHTTPServer

try:
    from tests.fakes import slack_history
except ImportError:  # pytest put tests/ on sys.path, not the repo root
    from fakes import slack_history  # type: ignore[no-redef]

MAX_BLOCKS = 50
MAX_TEXT = 40_000

_BLOCK_TYPES = {"section", "header", "context", "actions", "divider", "image", "rich_text", "input", "file", "video"}


@dataclass
class FakeMessage:
    channel: str  # channel ID
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    thread_ts: str | None = None
    versions: list[dict[str, Any]] = field(default_factory=list)  # every text/blocks it has had, oldest first
    metadata: dict[str, Any] | None = None  # chat.postMessage's `metadata`, as given
    reply_broadcast: bool = False  # a thread reply also sent to the channel (Slack's `thread_broadcast`)
    replies: list[str] = field(default_factory=list)  # ts of the replies in this message's thread

    def to_api(self, *, include_metadata: bool) -> dict[str, Any]:
        """The message object Slack's methods return; a thread's parent carries its
        `thread_ts` (its own ts), `reply_count` and `latest_reply`, as Slack's do."""
        subtype = "thread_broadcast" if self.reply_broadcast else "bot_message"
        out: dict[str, Any] = {"type": "message", "subtype": subtype, "text": self.text, "ts": self.ts,
                               "bot_id": "B0FAKE0001", "app_id": "A0FAKE0001", "blocks": self.blocks}
        if self.thread_ts:
            out["thread_ts"] = self.thread_ts
        elif self.replies:
            out.update(thread_ts=self.ts, reply_count=len(self.replies), latest_reply=self.replies[-1],
                       reply_users=["U0FAKE0001"], reply_users_count=1)
        if include_metadata and self.metadata is not None:
            out["metadata"] = self.metadata
        return out

    @property
    def updates(self) -> int:
        return len(self.versions) - 1


@dataclass
class FakeRequest:
    method: str
    status: int
    error: str | None
    params: dict[str, Any]
    content_type: str


@dataclass
class _Bucket:
    rate: float  # tokens per second
    burst: float
    tokens: float
    last: float

    def take(self, now: float) -> float | None:
        """None when a token was taken; else seconds until one is available."""
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1:
            self.tokens -= 1
            return None
        return (1 - self.tokens) / self.rate


@dataclass
class _Fault:
    status: int
    count: int
    method: str | None
    retry_after: int
    error: str | None


def validate_blocks(blocks: Any) -> list[str]:
    """Block Kit errors in Slack's style ("... [json-pointer:/blocks/3/text/text]"); empty when valid."""
    if not isinstance(blocks, list):
        return ["expected an array [json-pointer:/blocks]"]
    errors: list[str] = []
    if len(blocks) > MAX_BLOCKS:
        errors.append(f"no more than {MAX_BLOCKS} items allowed [json-pointer:/blocks]")

    def text_obj(obj: Any, ptr: str, limit: int, plain_only: bool = False) -> None:
        if not isinstance(obj, dict) or obj.get("type") not in ("plain_text", "mrkdwn"):
            errors.append(f"must be a text object [json-pointer:{ptr}]")
            return
        if plain_only and obj["type"] != "plain_text":
            errors.append(f"must be plain_text [json-pointer:{ptr}/type]")
        t = obj.get("text")
        if not isinstance(t, str) or not t:
            errors.append(f"must be more than 0 characters [json-pointer:{ptr}/text]")
        elif len(t) > limit:
            errors.append(f"must be less than {limit + 1} characters [json-pointer:{ptr}/text]")

    def element(el: Any, ptr: str) -> None:
        if not isinstance(el, dict):
            errors.append(f"must be an object [json-pointer:{ptr}]")
            return
        if len(str(el.get("action_id", ""))) > 255:
            errors.append(f"must be less than 256 characters [json-pointer:{ptr}/action_id]")
        if el.get("type") == "button":
            text_obj(el.get("text"), f"{ptr}/text", 75, plain_only=True)
            if len(str(el.get("value", ""))) > 2000:
                errors.append(f"must be less than 2001 characters [json-pointer:{ptr}/value]")
            if len(str(el.get("url", ""))) > 3000:
                errors.append(f"must be less than 3001 characters [json-pointer:{ptr}/url]")
            confirm = el.get("confirm")
            if confirm is not None:
                text_obj(confirm.get("title"), f"{ptr}/confirm/title", 100, plain_only=True)
                text_obj(confirm.get("text"), f"{ptr}/confirm/text", 300)
                text_obj(confirm.get("confirm"), f"{ptr}/confirm/confirm", 30, plain_only=True)
                text_obj(confirm.get("deny"), f"{ptr}/confirm/deny", 30, plain_only=True)

    for i, b in enumerate(blocks[:MAX_BLOCKS] if isinstance(blocks, list) else []):
        ptr = f"/blocks/{i}"
        if not isinstance(b, dict) or b.get("type") not in _BLOCK_TYPES:
            errors.append(f"unsupported block type [json-pointer:{ptr}/type]")
            continue
        if len(str(b.get("block_id", ""))) > 255:
            errors.append(f"must be less than 256 characters [json-pointer:{ptr}/block_id]")
        kind = b["type"]
        if kind == "header":
            text_obj(b.get("text"), f"{ptr}/text", 150, plain_only=True)
        elif kind == "section":
            if "text" not in b and "fields" not in b:
                errors.append(f"must provide either text or fields [json-pointer:{ptr}]")
            if "text" in b:
                text_obj(b["text"], f"{ptr}/text", 3000)
            fields = b.get("fields")
            if fields is not None:
                if not isinstance(fields, list) or len(fields) > 10:
                    errors.append(f"no more than 10 items allowed [json-pointer:{ptr}/fields]")
                else:
                    for j, f in enumerate(fields):
                        text_obj(f, f"{ptr}/fields/{j}", 2000)
            if "accessory" in b:
                element(b["accessory"], f"{ptr}/accessory")
        elif kind == "context":
            els = b.get("elements")
            if not isinstance(els, list) or not els:
                errors.append(f"must provide at least 1 item [json-pointer:{ptr}/elements]")
            elif len(els) > 10:
                errors.append(f"no more than 10 items allowed [json-pointer:{ptr}/elements]")
            else:
                for j, el in enumerate(els):
                    if isinstance(el, dict) and el.get("type") in ("plain_text", "mrkdwn"):
                        text_obj(el, f"{ptr}/elements/{j}", 3000)
        elif kind == "actions":
            els = b.get("elements")
            if not isinstance(els, list) or not els:
                errors.append(f"must provide at least 1 item [json-pointer:{ptr}/elements]")
            elif len(els) > 25:
                errors.append(f"no more than 25 items allowed [json-pointer:{ptr}/elements]")
            else:
                ids = [el.get("action_id") for el in els if isinstance(el, dict) and el.get("action_id")]
                if len(ids) != len(set(ids)):
                    errors.append(f"action_id values must be unique [json-pointer:{ptr}/elements]")
                for j, el in enumerate(els):
                    element(el, f"{ptr}/elements/{j}")
    return errors


class FakeSlack:
    """The Slack Web API, in memory, on 127.0.0.1."""

    def __init__(
        self,
        token: str = "xoxb-fake-token",
        *,
        channels: tuple[str, ...] = ("recsys-alerts",),
        scopes: tuple[str, ...] = ("chat:write", "channels:history", "channels:read", "usergroups:read"),
        post_rate_per_s: float = 1.0,
        post_burst: int = 3,
        update_rate_per_s: float = 50 / 60,  # chat.update is Tier 3: ~50 per minute
        update_burst: int = 10,
        read_burst: int = 10,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.token = token
        self.scopes = set(scopes)
        self._limits = {
            "chat.postMessage": (post_rate_per_s, post_burst),
            "chat.update": (update_rate_per_s, update_burst),
            "conversations.history": (50 / 60, read_burst),  # Tier 3
            "conversations.replies": (50 / 60, read_burst),  # Tier 3
            "conversations.list": (20 / 60, read_burst),  # Tier 2
            "conversations.info": (50 / 60, read_burst),  # Tier 3
            "usergroups.users.list": (20 / 60, read_burst),  # Tier 2
        }
        self._clock = clock
        self._lock = threading.Lock()
        self._channels: dict[str, dict[str, Any]] = {}  # id -> {"name","member","archived"}
        self._messages: dict[tuple[str, str], FakeMessage] = {}
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._faults: list[_Fault] = []
        self._delays: list[float] = []
        self._drops = 0
        self._last_ts = 0
        self._usergroups: dict[str, list[str]] = {}
        self._response_urls: dict[str, list[dict[str, Any]]] = {}  # path -> the bodies posted to it
        self.requests: list[FakeRequest] = []
        for name in channels:
            self.add_channel(name)
        self._http = LocalHTTPServer(type("_Handler", (_Handler,), {"fake": self}), name="fake-slack")

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> FakeSlack:
        self._http.start()
        return self

    def stop(self) -> None:
        self._http.stop()

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._http.port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    # ------------------------------------------------------------------ test controls
    def add_channel(self, name: str, *, member: bool = True, archived: bool = False, private: bool = False) -> str:
        with self._lock:
            cid = f"C0{len(self._channels) + 1:08d}"
            self._channels[cid] = {"name": name.lstrip("#"), "member": member, "archived": archived,
                                   "private": private}
            return cid

    def channel_id(self, name: str) -> str:
        cid = self._resolve(name, ids_only=False)
        if cid is None:
            raise KeyError(name)
        return cid

    def force(self, status: int, count: int = 1, *, method: str | None = None, retry_after: int = 1,
              error: str | None = None) -> None:
        """The next `count` requests (to `method`, or any) answer `status`: 429, 500, 503, or 200 with `error`."""
        with self._lock:
            self._faults.append(_Fault(status, count, method, int(retry_after), error))

    def drop(self, count: int = 1) -> None:
        """The next `count` requests are acted on, then answered by closing the connection."""
        with self._lock:
            self._drops += count

    def take_drop(self) -> bool:
        with self._lock:
            if self._drops > 0:
                self._drops -= 1
                return True
            return False

    def delay(self, seconds: float, count: int = 1) -> None:
        """The next `count` requests wait `seconds` before answering (client timeouts)."""
        with self._lock:
            self._delays.extend([seconds] * count)

    def add_usergroup(self, group_id: str, users: list[str]) -> None:
        """A user group (S…) and its members (U…), as usergroups.users.list will answer."""
        with self._lock:
            self._usergroups[group_id] = list(users)

    def response_url(self) -> str:
        """A fresh response_url, as Slack puts in an interaction payload."""
        with self._lock:
            path = f"/actions/T0FAKE0001/{len(self._response_urls) + 1}/r{len(self._response_urls):07d}"
            self._response_urls[path] = []
        return f"http://127.0.0.1:{self.port}{path}"

    def responses(self, url: str | None = None) -> list[dict[str, Any]]:
        """The bodies posted to one response_url (or to all of them), oldest first."""
        with self._lock:
            if url is not None:
                return list(self._response_urls.get(urlsplit(url).path, []))
            return [b for bodies in self._response_urls.values() for b in bodies]

    def _respond(self, path: str, raw: bytes) -> tuple[int, dict[str, Any]]:
        with self._lock:
            bodies = self._response_urls.get(path)
            if bodies is None:
                return 404, {"ok": False, "error": "invalid_url"}
            if len(bodies) >= 5:
                return 404, {"ok": False, "error": "used_url"}
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                return 400, {"ok": False, "error": "invalid_payload"}
            bodies.append(body)
            return 200, {"ok": True}

    def delete_message(self, channel: str, ts: str) -> None:
        """Someone deleted the message in Slack: a later chat.update gets message_not_found."""
        cid = self.channel_id(channel)
        with self._lock:
            self._messages.pop((cid, ts), None)

    def messages(self, channel: str | None = None) -> list[FakeMessage]:
        with self._lock:
            msgs = list(self._messages.values())
        if channel is not None:
            cid = self.channel_id(channel)
            msgs = [m for m in msgs if m.channel == cid]
        return sorted(msgs, key=lambda m: m.ts)

    def thread(self, channel: str, ts: str) -> list[FakeMessage]:
        """The replies in the thread of the message `ts`, oldest first."""
        cid = self.channel_id(channel)
        return [m for m in self.messages() if m.channel == cid and m.thread_ts == ts and m.ts != ts]

    def calls(self, method: str | None = None, status: int | None = None) -> list[FakeRequest]:
        with self._lock:
            return [r for r in self.requests if (method is None or r.method == method)
                    and (status is None or r.status == status)]

    # ------------------------------------------------------------------ API
    def _resolve(self, channel: Any, *, ids_only: bool) -> str | None:
        if not isinstance(channel, str) or not channel:
            return None
        if channel in self._channels:
            return channel
        if ids_only:
            return None
        name = channel.lstrip("#")
        for cid, c in self._channels.items():
            if c["name"] == name:
                return cid
        return None

    def _rate_limited(self, method: str, cid: str) -> tuple[int, dict[str, str], dict[str, Any]] | None:
        rate, burst = self._limits[method]
        bucket = self._buckets.setdefault((method, cid), _Bucket(rate, burst, burst, self._clock()))
        wait = bucket.take(self._clock())
        if wait is None:
            return None
        return 429, {"Retry-After": str(max(1, math.ceil(wait)))}, {"ok": False, "error": "ratelimited"}

    def _read(self, method: str, cid: str, params: dict[str, Any]) -> tuple[int, dict[str, str], dict[str, Any]]:
        """conversations.history / .replies / .list; reads are limited per method, not per channel."""
        limited = self._rate_limited(method, "")
        if limited is not None:
            return limited
        meta = slack_history.flag(params, "include_all_metadata")
        try:
            if method == "conversations.list":
                return 200, {}, slack_history.channel_list(self._channels, params)
            msgs = [m for m in self._messages.values() if m.channel == cid]
            if method == "conversations.history":
                top = [m.to_api(include_metadata=meta) for m in msgs
                       if not m.thread_ts or m.thread_ts == m.ts or m.reply_broadcast]
                return 200, {}, slack_history.history(top, params, time.time())
            parent = self._messages.get((cid, str(params.get("ts") or "")))
            if parent is None:
                return 200, {}, {"ok": False, "error": "thread_not_found"}
            thread = [m.to_api(include_metadata=meta) for m in msgs if m.thread_ts == parent.ts and m is not parent]
            return 200, {}, slack_history.replies(parent.to_api(include_metadata=meta), thread, params, time.time())
        except slack_history.ApiError as e:
            return 200, {}, {"ok": False, "error": e.error}

    def _info(self, params: dict[str, Any]) -> tuple[int, dict[str, str], dict[str, Any]]:
        """conversations.info: an ID only; a private channel only to a member; the scope by its type."""
        limited = self._rate_limited("conversations.info", "")
        if limited is not None:
            return limited
        cid = self._resolve(params.get("channel"), ids_only=True)
        chan = self._channels.get(cid or "")
        if chan is None or (chan["private"] and not chan["member"]):
            return 200, {}, {"ok": False, "error": "channel_not_found"}
        needed = "groups:read" if chan["private"] else "channels:read"
        if needed not in self.scopes:
            return 200, {}, {"ok": False, "error": "missing_scope", "needed": needed,
                             "provided": ",".join(sorted(self.scopes))}
        return 200, {}, {"ok": True, "channel": slack_history.channel_object(cid or "", chan)}

    def _usergroup_users(self, params: dict[str, Any]) -> tuple[int, dict[str, str], dict[str, Any]]:
        limited = self._rate_limited("usergroups.users.list", "")
        if limited is not None:
            return limited
        group = params.get("usergroup")
        if not group:
            return 200, {}, {"ok": False, "error": "invalid_arguments"}
        if group not in self._usergroups:
            return 200, {}, {"ok": False, "error": "no_such_subteam"}
        return 200, {}, {"ok": True, "users": list(self._usergroups[group])}

    def _next_ts(self) -> str:
        """The posting time in microseconds, unique per workspace (as Slack's ts)."""
        self._last_ts = max(int(time.time() * 1_000_000), self._last_ts + 1)
        return f"{self._last_ts // 1_000_000}.{self._last_ts % 1_000_000:06d}"

    def handle(self, method: str, headers: dict[str, str], raw: bytes,
               query: dict[str, Any] | None = None) -> tuple[int, dict[str, str], dict[str, Any]]:
        content_type = headers.get("content-type", "")
        params: dict[str, Any] = dict(query or {})
        warnings: list[str] = []
        if content_type.startswith("application/json") and method in _FORM_ONLY:
            pass  # such a method reads the query string and form fields only
        elif content_type.startswith("application/json"):
            if "charset" not in content_type:
                warnings.append("missing_charset")
            try:
                params = json.loads(raw or b"{}")
            except ValueError:
                return 200, {}, {"ok": False, "error": "invalid_json"}
        elif content_type.startswith("application/x-www-form-urlencoded") or raw:
            params = {k: v[0] for k, v in parse_qs(raw.decode("utf-8")).items()}
            if isinstance(params.get("blocks"), str):
                try:
                    params["blocks"] = json.loads(params["blocks"])
                except ValueError:
                    return 200, {}, {"ok": False, "error": "invalid_blocks_format"}

        delay = 0.0
        with self._lock:
            if self._delays:
                delay = self._delays.pop(0)
        if delay:
            time.sleep(delay)

        with self._lock:
            status, extra_headers, body = self._dispatch(method, headers, params)
            if body.get("error") not in ("not_authed", "invalid_auth") and status == 200:
                extra_headers = {**extra_headers, "X-OAuth-Scopes": ", ".join(sorted(self.scopes))}
            if body.get("ok") and warnings:
                body["warning"] = ",".join(warnings)
                body["response_metadata"] = {"warnings": warnings}
            self.requests.append(FakeRequest(method, status, body.get("error"), params, content_type))
        return status, extra_headers, body

    def _dispatch(
        self, method: str, headers: dict[str, str], params: dict[str, Any]
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        for fault in self._faults:
            if fault.count > 0 and (fault.method is None or fault.method == method):
                fault.count -= 1
                if fault.status == 429:
                    return 429, {"Retry-After": str(fault.retry_after)}, {"ok": False, "error": "ratelimited"}
                if fault.status >= 500:
                    return fault.status, {}, {"ok": False, "error": fault.error or "internal_error"}
                return fault.status, {}, {"ok": False, "error": fault.error or "fatal_error"}
        self._faults = [f for f in self._faults if f.count > 0]

        auth = headers.get("authorization", "")
        token = auth[len("Bearer "):] if auth.startswith("Bearer ") else params.get("token")
        if not token:
            return 200, {}, {"ok": False, "error": "not_authed"}
        if token != self.token:
            return 200, {}, {"ok": False, "error": "invalid_auth"}

        if method == "auth.test":
            return 200, {}, {"ok": True, "url": "https://vigil-test.slack.com/", "team": "Vigil Test",
                             "user": "vigil", "team_id": "T0FAKE0001", "user_id": "U0FAKE0001",
                             "bot_id": "B0FAKE0001", "is_enterprise_install": False}
        if method not in _SCOPES:
            return 200, {}, {"ok": False, "error": "unknown_method"}
        if method == "conversations.info":  # its scope depends on the channel's type
            return self._info(params)
        if _SCOPES[method] not in self.scopes:
            return 200, {}, {"ok": False, "error": "missing_scope", "needed": _SCOPES[method],
                             "provided": ",".join(sorted(self.scopes))}
        if method == "conversations.list":
            if "groups:read" not in self.scopes:  # [assumed]: private channels left out, not refused
                params = {**params, "types": ",".join(t for t in str(params.get("types") or "public_channel")
                                                       .split(",") if t.strip() != "private_channel")}
            return self._read(method, "", params)
        if method == "usergroups.users.list":
            return self._usergroup_users(params)

        # Only chat.postMessage resolves channel names; every other method takes an ID.
        cid = self._resolve(params.get("channel"), ids_only=method != "chat.postMessage")
        if cid is None:
            return 200, {}, {"ok": False, "error": "channel_not_found"}
        chan = self._channels[cid]
        if chan["private"] and not chan["member"]:  # hidden from a bot that is not in it
            return 200, {}, {"ok": False, "error": "channel_not_found"}
        if chan["archived"] and method.startswith("chat."):
            return 200, {}, {"ok": False, "error": "is_archived"}
        public_post = method == "chat.postMessage" and "chat:write.public" in self.scopes
        if not chan["member"] and not public_post:  # a bot token reads and writes only where it is a member
            return 200, {}, {"ok": False, "error": "not_in_channel"}
        if method.startswith("conversations."):
            return self._read(method, cid, params)

        limited = self._rate_limited(method, cid)
        if limited is not None:
            return limited

        text = params.get("text") or ""
        blocks = params.get("blocks")
        if not text and not blocks:
            return 200, {}, {"ok": False, "error": "no_text"}
        if len(text) > MAX_TEXT:
            return 200, {}, {"ok": False, "error": "msg_too_long"}
        if blocks is not None:
            errors = validate_blocks(blocks)
            if errors:
                return 200, {}, {"ok": False, "error": "invalid_blocks", "errors": errors,
                                 "response_metadata": {"messages": [f"[ERROR] {e}" for e in errors]}}
        version = {"text": text, "blocks": blocks or []}
        try:
            metadata = slack_history.metadata(params.get("metadata"))
        except slack_history.ApiError as e:
            return 200, {}, {"ok": False, "error": e.error}

        if method == "chat.postMessage":
            thread_ts = params.get("thread_ts") or None
            parent = self._messages.get((cid, thread_ts)) if thread_ts else None
            if parent is not None and parent.thread_ts:  # a reply to a reply joins the parent's thread
                thread_ts, parent = parent.thread_ts, self._messages.get((cid, parent.thread_ts))
            ts = self._next_ts()
            broadcast = bool(thread_ts) and params.get("reply_broadcast") in (True, "true", "1", 1)
            msg = FakeMessage(cid, ts, text, blocks or [], thread_ts, [version], metadata, broadcast)
            self._messages[(cid, ts)] = msg
            if parent is not None:
                parent.replies.append(ts)
        else:
            ts = params.get("ts")
            msg = self._messages.get((cid, ts)) if isinstance(ts, str) else None
            if msg is None:
                return 200, {}, {"ok": False, "error": "message_not_found"}
            msg.text, msg.blocks = text, blocks or []
            msg.versions.append(version)
            if metadata is not None:  # chat.update replaces metadata only when given
                msg.metadata = metadata
        message = msg.to_api(include_metadata=False)
        body: dict[str, Any] = {"ok": True, "channel": cid, "ts": msg.ts, "message": message}
        if method == "chat.update":
            body["text"] = msg.text
        return 200, {}, body


_SCOPES = {  # the scope each method needs of a bot token (public channels)
    "chat.postMessage": "chat:write", "chat.update": "chat:write",
    "conversations.history": "channels:history", "conversations.replies": "channels:history",
    "conversations.list": "channels:read", "conversations.info": "channels:read",  # (info: by the channel's type)
    "usergroups.users.list": "usergroups:read",
}
_FORM_ONLY = {"usergroups.users.list"}  # Slack reads no JSON body for these


class _Handler(BaseHTTPRequestHandler):
    fake: FakeSlack

    def do_POST(self) -> None:  # http.server names its handlers so
        length = int(self.headers.get("Content-Length") or 0)
        self._call(self.rfile.read(length) if length else b"")

    def do_GET(self) -> None:  # Slack takes every argument in the query string as well
        self._call(b"")

    def _call(self, raw: bytes) -> None:
        headers = {k.lower(): v for k, v in self.headers.items()}
        url = urlsplit(self.path)
        if url.path.startswith("/actions/") and self.command == "POST":
            status, body = self.fake._respond(url.path, raw)
            self._send(status, {}, body)
            return
        if not url.path.startswith("/api/"):
            self._send(404, {}, {"ok": False, "error": "unknown_method"})
            return
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        status, extra, body = self.fake.handle(url.path[len("/api/"):], headers, raw, query)
        if self.fake.take_drop():
            self.close_connection = True  # acted on, never answered
            return
        self._send(status, extra, body)

    def _send(self, status: int, extra: dict[str, str], body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for k, v in extra.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout test)

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass
