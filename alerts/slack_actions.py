"""Slack interactive callbacks: verify the signature, then read which button was pressed.

Slack POSTs `payload=<url-encoded JSON>` with `X-Slack-Request-Timestamp` and
`X-Slack-Signature: v0=<hmac>` computed over the raw body. The signature is checked
on the raw bytes before anything is parsed; a request that fails it is never read.
The HTTP endpoint answers 200 within 3 s and does the work (ack, silence, rollback)
afterwards (monitor/api/slack_desk.py), then updates the message through the outbox.
"""
from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from slack_sdk.signature import Clock, SignatureVerifier

from alerts.slack_text import ACTION_IDS, ACTIONS_BLOCK

MAX_CLOCK_SKEW_S = 300  # what slack_sdk's SignatureVerifier allows, and what Slack recommends
MAX_INCIDENT_ID = 2**63 - 1  # incident ids are 64-bit signed integers in every store
_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")  # HMAC-SHA256 in hex, as Slack sends it


class InvalidSlackSignature(Exception):
    """The request is not provably from Slack (bad, missing or stale signature): answer 401."""


@dataclass(frozen=True)
class SlackAction:
    action_id: str  # "ack", "silence" or "rollback"
    model: str
    incident_id: int
    user_id: str
    user_name: str
    channel_id: str | None
    message_ts: str | None
    response_url: str | None
    action_ts: str | None = None  # Slack's id for this click: use it to make the action idempotent
    shown_move: tuple[str, str] | None = None  # (from, to) the Roll back button showed; None: an older message

    @property
    def actor(self) -> str:
        """How the audit log names the person: `slack:U123 (alice)`; the ID is what Slack
        guarantees, the name is what a reader recognises."""
        if self.user_name and self.user_name != self.user_id:
            return f"slack:{self.user_id} ({self.user_name})"
        return f"slack:{self.user_id}"


class _FixedClock(Clock):
    def __init__(self, now: float) -> None:
        self._now = now

    def now(self) -> float:
        return self._now


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for k, v in headers.items():
        if k.lower() == name:
            return v
    return None


def verify_signature(body: bytes, headers: Mapping[str, str], signing_secret: str, now: float) -> None:
    """Raise InvalidSlackSignature unless Slack signed this raw body within the last 300 s."""
    if not signing_secret:
        raise InvalidSlackSignature("slack.signing_secret is not set: interactive buttons cannot be verified")
    timestamp = _header(headers, "x-slack-request-timestamp")
    signature = _header(headers, "x-slack-signature")
    if not timestamp or not signature:
        raise InvalidSlackSignature("missing X-Slack-Request-Timestamp or X-Slack-Signature header")
    try:
        ts = int(timestamp)
    except ValueError:
        raise InvalidSlackSignature(f"X-Slack-Request-Timestamp: expected integer seconds, got {timestamp!r}") from None
    if abs(now - ts) > MAX_CLOCK_SKEW_S:
        raise InvalidSlackSignature(
            f"stale request: timestamp {ts} is {abs(now - ts):.0f} s from now (limit {MAX_CLOCK_SKEW_S} s); "
            "a replay, or this host's clock is wrong"
        )
    if not _SIGNATURE.fullmatch(signature):
        # hmac.compare_digest raises TypeError on a non-ASCII str (a header byte above 0x7f):
        # that was a 500 for anyone on the network. Slack's is always this shape.
        raise InvalidSlackSignature(f"X-Slack-Signature: expected v0=<64 hex digits>, got {signature[:80]!r}")
    verifier = SignatureVerifier(signing_secret, clock=_FixedClock(now))
    if not verifier.is_valid(body=body, timestamp=timestamp, signature=signature):
        raise InvalidSlackSignature("signature mismatch: wrong slack.signing_secret, or the body was altered")


def _get(d: Any, path: str) -> Any:
    cur = d
    for part in path.split("."):
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(part)
    return cur


def _str_field(d: Any, *paths: str) -> str | None:
    for path in paths:
        v = _get(d, path)
        if isinstance(v, str) and v:
            return v
    return None


def _incident_id(raw: str) -> int:
    """The id in a button's value, in the store's range: Slack signs what it is sent back,
    so a value is only as sane as whoever built the message (a 64-bit store column)."""
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 19 and 1 <= int(raw) <= MAX_INCIDENT_ID):
        raise ValueError(f"payload.actions[0].value: incident id must be an integer in 1..{MAX_INCIDENT_ID}, "
                         f"got {raw[:40]!r}{'...' if len(raw) > 40 else ''}")
    return int(raw)


def parse_payload(payload: Mapping[str, Any]) -> SlackAction:
    """A `block_actions` payload (already JSON-decoded) -> SlackAction; ValueError names the bad field."""
    if payload.get("type") != "block_actions":
        raise ValueError(f"payload.type: expected 'block_actions', got {payload.get('type')!r}")
    actions = payload.get("actions")
    if not isinstance(actions, list) or not actions or not isinstance(actions[0], Mapping):
        raise ValueError("payload.actions: expected a non-empty list of actions")
    action = actions[0]
    action_id = action.get("action_id")
    if action_id not in ACTION_IDS:
        raise ValueError(f"payload.actions[0].action_id: expected one of {', '.join(ACTION_IDS)}, got {action_id!r}")
    value = action.get("value")
    if not isinstance(value, str) or ":" not in value:
        raise ValueError(f"payload.actions[0].value: expected '<model>:<incident_id>', got {value!r}")
    model, _, raw_id = value.rpartition(":")
    if not model:
        raise ValueError(f"payload.actions[0].value: expected '<model>:<incident_id>', got {value!r}")
    incident_id = _incident_id(raw_id)
    user_id = _str_field(payload, "user.id")
    if user_id is None:
        raise ValueError("payload.user.id: expected the id of the user who pressed the button")
    return SlackAction(
        action_id=action_id,
        model=model,
        incident_id=incident_id,
        user_id=user_id,
        user_name=_str_field(payload, "user.username", "user.name") or user_id,
        channel_id=_str_field(payload, "channel.id", "container.channel_id"),
        message_ts=_str_field(payload, "container.message_ts", "message.ts"),
        response_url=_str_field(payload, "response_url"),
        action_ts=action.get("action_ts") if isinstance(action.get("action_ts"), str) else None,
        shown_move=_shown_move(action.get("block_id")),
    )


def _shown_move(block_id: Any) -> tuple[str, str] | None:
    """The (from, to) versions a message's Roll back button showed, from its block id."""
    if not isinstance(block_id, str):
        return None
    parts = block_id.split(":")
    return (parts[1], parts[2]) if len(parts) == 3 and parts[0] == ACTIONS_BLOCK else None


def parse_interaction(body: bytes, headers: Mapping[str, str], signing_secret: str, now: float) -> SlackAction:
    """Verify and parse one interactive callback (the raw request body and headers)."""
    verify_signature(body, headers, signing_secret, now)
    try:
        form = parse_qs(body.decode("utf-8"), strict_parsing=False)
    except UnicodeDecodeError:
        raise ValueError("body: expected UTF-8 form data 'payload=<json>'") from None
    raw = form.get("payload")
    if not raw:
        raise ValueError("payload: expected a form field 'payload' holding JSON")
    try:
        payload = json.loads(raw[0])
    except json.JSONDecodeError as e:
        raise ValueError(f"payload: not valid JSON ({e.msg} at {e.pos})") from None
    if not isinstance(payload, Mapping):
        raise ValueError("payload: expected a JSON object")
    return parse_payload(payload)
