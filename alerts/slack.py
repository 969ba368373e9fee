"""Slack notifier: one message per incident, posted once and then updated in place.

It sits behind the outbox: the sender hands it one `OutboxMessage` at a time and
records the returned `DeliveryResult`. Every Slack answer maps to DELIVERED, RETRY
(rate limit, outage, timeout, a token Slack rejects: try later, the message stays in the
outbox) or FAILED (bad channel, missing scope: a person must fix config; the error says
what to fix). Nothing here knows about policy.

Every post carries its outbox row in its message metadata, so `find_delivered` can
find it in the channel's history when a sender died before recording it
(alerts/slack_lookup.py). Scopes: chat:write to post; channels:history and
channels:read (groups:history and groups:read for private channels) to look.
"""
from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping
from http.client import RemoteDisconnected
from typing import Any
from urllib.error import URLError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from alerts.outbox import CLAIM_ENDS, DeliveryResult, DeliveryStatus, MessageKind, OutboxMessage
from alerts.slack_blocks import render_incident, render_rollback
from alerts.slack_lookup import CannotTell, SlackLookup, cannot_tell, post_metadata
from alerts.slack_replies import render_group, render_reply
from alerts.slack_retry import ConnectRetry, ShortRateLimitRetry, header
from alerts.slack_web import AUTH_ERRORS, AUTH_RETRY_S

log = logging.getLogger("vigil.alerts.slack")

# Slack-side trouble that passes: the same request can succeed later.
_TRANSIENT_ERRORS = frozenset(
    {"internal_error", "fatal_error", "service_unavailable", "ratelimited", "request_timeout"}
)
_AUTH_ERRORS = AUTH_ERRORS
# chat.update on a message that is gone or not ours: post a fresh one so nothing is lost.
_REPOST_ERRORS = frozenset({"message_not_found", "cant_update_message", "edit_window_closed"})
_CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{6,}")
# One message's lookup and send together, every call, timeout and rate-limit sleep included,
# end within this: well inside the outbox claim (300 s, monitor/store/outbox.py), so no other
# sender takes the row over mid-send. Up to 22 calls x (timeout + 3 retries) would not.
SEND_BUDGET_S = 240.0


def _channel_label(channel: str | None) -> str:
    if not channel:
        return "(no channel)"
    if channel.startswith("#") or _CHANNEL_ID.fullmatch(channel):
        return channel
    return f"#{channel}"


def _explain(error: str, resp: Mapping[str, Any], channel: str | None, method: str) -> str:
    """An error a person can act on: what Slack said, and what to change."""
    ch = _channel_label(channel)
    if error == "channel_not_found":
        return (
            f"Slack: channel_not_found for {ch} — check models[].owner_channel / oncall_channel, "
            "and invite the bot if the channel is private"
        )
    if error == "not_in_channel":
        return f"Slack: not_in_channel for {ch} — invite the bot to {ch} (/invite @<bot>)"
    if error == "is_archived":
        return f"Slack: is_archived for {ch} — unarchive it or point models[].owner_channel elsewhere"
    if error in _AUTH_ERRORS:
        return (
            f"Slack: {error} — slack.bot_token was rejected; "
            "set it to a valid bot token (xoxb-…) with chat:write"
        )
    if error == "missing_scope":
        needed = resp.get("needed") or "?"
        provided = resp.get("provided") or "?"
        return (
            f"Slack: missing_scope — the bot token needs scope {needed} (has {provided}); "
            "add it under OAuth & Permissions and reinstall the app"
        )
    if error == "invalid_blocks":
        errors = resp.get("errors") or (resp.get("response_metadata") or {}).get("messages") or []
        detail = "; ".join(map(str, errors)) or "no detail"
        return f"Slack: invalid_blocks in {method} for {ch} — {detail} (a Vigil bug: report it)"
    if error == "msg_too_long":
        return f"Slack: msg_too_long in {method} for {ch} — the text is over Slack's limit (a Vigil bug: report it)"
    if error == "no_text":
        return f"Slack: no_text in {method} for {ch} — the message had no text or blocks (a Vigil bug: report it)"
    return f"Slack: {error} in {method} for {ch}"


class SlackNotifier:
    """Delivers outbox messages to Slack through slack-sdk's WebClient."""

    name = "slack"

    def __init__(
        self,
        token: str,
        *,
        base_url: str = "https://slack.com/api/",
        max_rate_limit_retries: int = 3,
        timeout_s: float = 10.0,
        default_channel: str | None = None,
    ) -> None:
        if not token:
            raise ValueError("slack.bot_token: expected a Slack bot token (xoxb-…); without one use JsonlSink")
        self.default_channel = default_channel
        self.max_rate_limit_retries = max_rate_limit_retries
        self._budget: tuple[tuple[int, int] | None, float] = (None, 0.0)  # (row id, attempts), deadline
        self._client = WebClient(
            token=token,
            base_url=base_url if base_url.endswith("/") else base_url + "/",
            timeout=timeout_s,  # type: ignore[arg-type]  # urllib takes float seconds
            retry_handlers=[
                # Only errors before the request went out (urllib wraps those in URLError).
                # A reset or a close after it was sent (RemoteDisconnected, the SDK's other
                # defaults) may follow a post Slack made: re-sending it in place would post
                # it twice, so it becomes an uncertain RETRY, looked for before it is sent.
                ConnectRetry(self._fits, error_types=[URLError]),
                ShortRateLimitRetry(self._fits, max_retry_count=max_rate_limit_retries),
            ],
        )
        self._lookup = SlackLookup(self._call)

    def __repr__(self) -> str:  # never show the token
        return f"SlackNotifier(base_url={self._client.base_url!r})"

    # ------------------------------------------------------------------ entry point
    def deliver(self, message: OutboxMessage) -> DeliveryResult:
        self._begin(message)
        if message.kind == MessageKind.DEPLOY:
            # Deploys are Grafana annotations; a Slack message per deploy would be noise.
            return DeliveryResult(DeliveryStatus.DELIVERED, ref=message.ref, detail={"skipped": True})
        payload = message.payload or {}
        channel = payload.get("channel") or self.default_channel
        try:
            if message.kind == MessageKind.INCIDENT:
                text, blocks = render_incident(payload)
            elif message.kind == MessageKind.ROLLBACK:
                text, blocks = render_rollback(payload)
            elif message.kind == MessageKind.REPLY:
                text, blocks = render_reply(payload)
            elif message.kind == MessageKind.GROUP:
                text, blocks = render_group(payload)
            else:
                return DeliveryResult(DeliveryStatus.FAILED, error=f"kind: Slack cannot send {message.kind!r}")
        except (KeyError, TypeError, ValueError) as e:
            bad = DeliveryResult(DeliveryStatus.FAILED, error=f"bad {message.kind} payload: {e}")
            return self._result(message, bad)

        try:
            if message.kind in (MessageKind.INCIDENT, MessageKind.GROUP):
                result = self._incident(message, channel, text, blocks)
            elif message.kind == MessageKind.REPLY:
                result = self._reply(message, channel, text, blocks)
            else:
                result = self._rollback(message, channel, text, blocks)
        except _NoChannel as e:
            result = DeliveryResult(DeliveryStatus.FAILED, error=str(e))
        except _OutOfTime as e:
            result = DeliveryResult(DeliveryStatus.RETRY, error=str(e))
        except _ApiCallFailed as e:
            result = self._map_error(e.error, e.method, e.channel)
        except (URLError, TimeoutError, ConnectionError, OSError, SlackClientError) as e:
            result = DeliveryResult(
                DeliveryStatus.RETRY, error=f"Slack unreachable ({type(e).__name__}: {e}); will retry",
                uncertain=_maybe_sent(e),
            )
        except Exception as e:  # an unknown failure must delay, never drop, a message
            log.exception("slack delivery raised", extra={"message_id": message.id, "key": message.key})
            result = DeliveryResult(DeliveryStatus.RETRY, error=f"Slack delivery raised {type(e).__name__}: {e}",
                                    uncertain=True)
        return self._result(message, result)

    def find_delivered(self, message: OutboxMessage) -> DeliveryResult | None:
        """The post for `message` if the channel's history has it (see alerts/outbox.py)."""
        self._begin(message)
        if message.kind not in (MessageKind.INCIDENT, MessageKind.ROLLBACK, MessageKind.REPLY, MessageKind.GROUP):
            return None  # deploys are never posted
        payload = message.payload or {}
        thread = (payload.get("thread") or {}) if message.kind == MessageKind.ROLLBACK else {}
        if message.kind == MessageKind.REPLY:
            thread = message.ref or {}  # a reply sits in the thread of the message its key names
        if thread.get("channel") and thread.get("ts"):  # a reply: in the thread, not the channel's history
            channel, thread_ts = thread["channel"], thread["ts"]
        elif message.kind in (MessageKind.INCIDENT, MessageKind.GROUP) and (message.ref or {}).get("channel"):
            # The key's message was posted: its ref holds the channel's ID, no listing needed.
            channel, thread_ts = message.ref["channel"], None  # type: ignore[index]
        else:
            channel, thread_ts = payload.get("channel") or self.default_channel, None
        if not channel:
            return None
        try:
            found = self._lookup.find(message, channel, thread_ts)
        except CannotTell as e:
            return cannot_tell(message, str(e))
        except _OutOfTime as e:
            return DeliveryResult(DeliveryStatus.RETRY, error=f"{e}; will look again before sending")
        except _ApiCallFailed as e:
            return self._map_error(e.error, e.method, e.channel)
        except (URLError, TimeoutError, ConnectionError, OSError, SlackClientError) as e:
            return DeliveryResult(DeliveryStatus.RETRY, error=f"Slack unreachable ({type(e).__name__}: {e}); "
                                                              "will look again before sending")
        if found is None:
            return None
        # An incident's later updates edit the found post; a rollback or a reply keeps the incident's ref.
        keeps = message.kind in (MessageKind.ROLLBACK, MessageKind.REPLY)
        ref = message.ref if (keeps and message.ref) or message.kind == MessageKind.REPLY else found  # not a parent
        return DeliveryResult(DeliveryStatus.DELIVERED, ref=ref, detail={"found_in_history": found})

    # ------------------------------------------------------------------ kinds
    def _incident(self, message: OutboxMessage, channel: str | None, text: str, blocks: list) -> DeliveryResult:
        ref = message.ref or {}
        if ref.get("channel") and ref.get("ts"):
            try:
                resp = self._call(
                    "chat.update", channel or ref["channel"], channel=ref["channel"], ts=ref["ts"],
                    text=text, blocks=blocks,
                )
                return DeliveryResult(
                    DeliveryStatus.DELIVERED,
                    ref={"channel": resp["channel"], "ts": resp["ts"]},
                    detail={"method": "chat.update"},
                )
            except _ApiCallFailed as e:
                if e.code not in _REPOST_ERRORS:
                    raise
                log.warning(
                    "slack message to update is gone; posting a new one",
                    extra={"message_id": message.id, "key": message.key, "error": e.code},
                )
                result = self._post(channel, text, blocks, post_metadata(message))
                result.detail["reposted_after"] = e.code
                return result
        return self._post(channel, text, blocks, post_metadata(message))

    def _rollback(self, message: OutboxMessage, channel: str | None, text: str, blocks: list) -> DeliveryResult:
        # A rollback is an event, never an update. It replies in the incident's thread;
        # the ref handed in is kept, so that a rollback sharing the incident's outbox key
        # cannot make later incident updates land on this reply.
        thread = message.payload.get("thread") or {}
        if thread.get("channel") and thread.get("ts"):
            result = self._post(thread["channel"], text, blocks, post_metadata(message), thread_ts=thread["ts"])
        else:
            result = self._post(channel, text, blocks, post_metadata(message))
        result.detail.update(result.ref or {})
        result.ref = message.ref or result.ref
        return result

    def _reply(self, message: OutboxMessage, channel: str | None, text: str, blocks: list) -> DeliveryResult:
        """A state change in the thread of the incident's message (its ref), which it leaves
        as the key's ref so later updates still edit the parent. An escalation is also
        broadcast to the channel: it is a page. Without a parent (it failed for good, or was
        dropped) an escalation, whose @-mentions nothing else in Slack carries, is posted in
        the channel, the key's ref left unset; anything else is skipped: the update said it."""
        ref = message.ref or {}
        broadcast = message.payload.get("change") == "escalated"
        parent = bool(ref.get("channel") and ref.get("ts"))
        if not parent and not broadcast:
            return DeliveryResult(DeliveryStatus.DELIVERED, ref=message.ref, detail={"skipped": "no parent message"})
        if parent:
            result = self._post(ref["channel"], text, blocks, post_metadata(message), thread_ts=ref["ts"],
                                broadcast=broadcast)
        else:
            result = self._post(channel, text, blocks, post_metadata(message))
        result.detail.update(result.ref or {}, **({} if parent else {"no_parent": "posted in the channel"}))
        result.ref = message.ref
        return result

    def _post(self, channel: str | None, text: str, blocks: list, metadata: dict[str, Any],
              thread_ts: str | None = None, broadcast: bool = False) -> DeliveryResult:
        if not channel:
            raise _NoChannel(
                "Slack: no channel for this message — set models[].owner_channel (or a default channel)"
            )
        kwargs: dict[str, Any] = {"channel": channel, "text": text, "blocks": blocks, "metadata": metadata,
                                  "unfurl_links": False, "unfurl_media": False}
        if thread_ts:
            kwargs["thread_ts"] = thread_ts
            if broadcast:
                kwargs["reply_broadcast"] = True
        resp = self._call("chat.postMessage", channel, **kwargs)
        self._lookup.remember(channel, resp["channel"])
        return DeliveryResult(
            DeliveryStatus.DELIVERED,
            ref={"channel": resp["channel"], "ts": resp["ts"]},
            detail={"method": "chat.postMessage"},
        )

    def _begin(self, message: OutboxMessage) -> None:
        """Start the message's budget, or go on with it: the sender looks, then sends, one claim.
        It ends with the sender's claim if that comes first (a sender paused after claiming)."""
        if self._budget[0] != (message.id, message.attempts):
            ends, claim = time.monotonic() + SEND_BUDGET_S, CLAIM_ENDS.get()
            self._budget = ((message.id, message.attempts), ends if claim is None else min(ends, claim))

    def _fits(self, wait_s: float) -> bool:
        """Can a retry after `wait_s` (one more call at the current timeout) end within the budget?"""
        return time.monotonic() + wait_s + float(self._client.timeout) <= self._budget[1]

    def _call(self, method: str, label: str | None, /, **kwargs: Any) -> Any:
        left = self._budget[1] - time.monotonic()
        if left <= 0:
            raise _OutOfTime(f"Slack: {method} not started: this message's budget ({SEND_BUDGET_S:g} s, "
                             "or what its outbox claim had left) is used up")
        base = self._client.timeout
        self._client.timeout = min(base, left)  # type: ignore[assignment]  # urllib takes float seconds
        call = {"chat.postMessage": self._client.chat_postMessage, "chat.update": self._client.chat_update,
                "conversations.history": self._client.conversations_history,
                "conversations.replies": self._client.conversations_replies,
                "conversations.list": self._client.conversations_list}[method]
        try:
            return call(**kwargs)
        except SlackApiError as e:
            raise _ApiCallFailed(e, method, label) from e
        finally:
            self._client.timeout = base

    # ------------------------------------------------------------------ errors
    def _map_error(self, e: SlackApiError, method: str, channel: str | None) -> DeliveryResult:
        resp = e.response
        status = getattr(resp, "status_code", 200) or 200
        data = resp.data if isinstance(getattr(resp, "data", None), dict) else {}
        error = str(data.get("error") or "unknown_error")
        if status == 429:
            raw = header(getattr(resp, "headers", None), "Retry-After")
            try:
                retry_after: float | None = float(raw) if raw is not None else None
            except ValueError:
                retry_after = None
            return DeliveryResult(
                DeliveryStatus.RETRY,
                error=(
                    f"Slack: rate limited (HTTP 429) on {method} for {_channel_label(channel)} after "
                    f"{self.max_rate_limit_retries} retries; retry after {raw or '?'} s"
                ),
                retry_after=retry_after,
                detail={"slack_error": error, "http_status": 429},
            )
        if status >= 500 or error in _TRANSIENT_ERRORS:
            return DeliveryResult(
                DeliveryStatus.RETRY,
                error=f"Slack: {error} (HTTP {status}) on {method}; will retry",
                detail={"slack_error": error, "http_status": status},
            )
        if error in _AUTH_ERRORS:  # the token, not the message: once it is fixed, what waited goes out
            return DeliveryResult(DeliveryStatus.RETRY, error=_explain(error, data, channel, method)
                                  + "; the message waits in the outbox until then", retry_after=AUTH_RETRY_S,
                                  detail={"slack_error": error, "http_status": status})
        return DeliveryResult(
            DeliveryStatus.FAILED,
            error=_explain(error, data, channel, method),
            detail={"slack_error": error, "http_status": status},
        )

    def _result(self, message: OutboxMessage, result: DeliveryResult) -> DeliveryResult:
        level = logging.INFO if result.status == DeliveryStatus.DELIVERED else logging.WARNING
        log.log(
            level,
            "slack delivery %s",
            result.status.value,
            extra={
                "message_id": message.id,
                "key": message.key,
                "kind": str(message.kind),
                "status": result.status.value,
                "error": result.error,
                "retry_after": result.retry_after,
                "slack_ts": (result.ref or {}).get("ts"),
            },
        )
        return result


def _maybe_sent(e: BaseException) -> bool:
    """Did the request perhaps reach Slack? A read timeout or a dropped connection after
    sending: yes; a refused or unresolvable connection (URLError): no."""
    return isinstance(e, (TimeoutError, RemoteDisconnected, ConnectionResetError)) and not isinstance(e, URLError)


class _NoChannel(Exception):
    pass


class _OutOfTime(Exception):
    """The message's SEND_BUDGET_S ran out before a call: not made, so nothing was sent by it."""


class _ApiCallFailed(Exception):
    """A SlackApiError with the method and channel it happened on."""

    def __init__(self, error: SlackApiError, method: str, channel: str | None) -> None:
        super().__init__(str(error))
        self.error = error
        self.method = method
        self.channel = channel
        data = error.response.data if isinstance(getattr(error.response, "data", None), dict) else {}
        self.code = str(data.get("error") or "")
