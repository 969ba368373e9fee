"""Tamper-evident audit log: each entry's hash covers its content and the previous hash.

Editing, deleting or reordering any entry breaks every hash after it, which
`verify_chain` reports with the first sequence number that no longer matches.

A plain SHA-256 chain only proves the entries agree with each other: whoever can write
the table can rewrite an entry and re-hash everything after it with the public
`entry_hash`. So entries are keyed: from a marker entry `audit.keyed` (whose detail names
the algorithm and the key's fingerprint) every hash is an HMAC-SHA256 under a secret key
the database never sees. Entries before the first marker (stores written before keying)
keep their plain hashes and are never rewritten; a verifier reports them as legacy.
What a chain cannot show by itself, a deleted tail or a wipe, the signed checkpoints
kept outside the database show (monitor/audit/).
"""
from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

GENESIS = "0" * 64
KEYED_MARKER = "audit.keyed"  # the action of the entry from which hashes are keyed
ALGORITHM = "hmac-sha256"


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: float
    actor: str  # "vigil" for automatic actions, else the API caller / Slack user
    action: str  # "rollback.requested", "rollback.done", "rollback.failed", "silence", "ack", ...
    target: str  # "model:recommender"
    detail: dict[str, Any] = field(default_factory=dict)
    prev_hash: str = GENESIS
    hash: str = ""


@dataclass(frozen=True)
class ChainKey:
    """The secret an audit chain and its checkpoints are keyed with."""

    secret: bytes = field(repr=False)

    @cached_property
    def key_id(self) -> str:
        """A fingerprint that names the key in markers and checkpoints without revealing it."""
        return self.sign(b"vigil-audit-key-id")[:16]

    def sign(self, message: bytes) -> str:
        # The one-shot form: verifying 100k entries spends a fifth of its time here.
        return hmac.digest(self.secret, message, "sha256").hex()


def _body(prev_hash: str, seq: int, at: float, actor: str, action: str, target: str,
          detail: dict[str, Any]) -> bytes:
    return json.dumps(
        {"prev": prev_hash, "seq": seq, "at": round(at, 6), "actor": actor, "action": action,
         "target": target, "detail": detail},
        sort_keys=True, separators=(",", ":"), default=str,
    ).encode()


def entry_hash(prev_hash: str, seq: int, at: float, actor: str, action: str, target: str,
               detail: dict[str, Any]) -> str:
    return hashlib.sha256(_body(prev_hash, seq, at, actor, action, target, detail)).hexdigest()


def keyed_hash(key: ChainKey, prev_hash: str, seq: int, at: float, actor: str, action: str, target: str,
               detail: dict[str, Any]) -> str:
    """The same canonical body as `entry_hash`, under HMAC-SHA256: without the key nobody
    can compute it, so a rewritten entry cannot be re-hashed into a valid chain."""
    return key.sign(_body(prev_hash, seq, at, actor, action, target, detail))


def marker_detail(key: ChainKey) -> dict[str, Any]:
    return {"algorithm": ALGORITHM, "key_id": key.key_id}


def keyed_by(key: ChainKey, e: AuditEntry) -> bool:
    """Whether `e` is an entry keyed with `key` (an appender then needs no new marker)."""
    return hmac.compare_digest(keyed_hash(key, e.prev_hash, e.seq, e.at, e.actor, e.action, e.target, e.detail),
                               e.hash)


@dataclass
class ChainVerdict:
    ok: bool
    checked: int
    first_bad_seq: int | None = None
    reason: str = ""
    head_seq: int = 0
    head_hash: str = GENESIS
    keyed_from: int | None = None  # seq of the first `audit.keyed` marker
    legacy: int = 0  # entries before it: plain SHA-256, a rewrite re-hashed to the end passes
    unchecked: int = 0  # keyed entries whose content was not checked: no key was given


class _Walk:
    """One pass over the chain; `step` returns why an entry is bad, or "" when it is fine."""

    def __init__(self, key: ChainKey | None) -> None:
        self.key = key
        self.verdict = ChainVerdict(True, 0)
        self.segment_key: str | None = None  # key_id of the keyed segment we are in; None: legacy

    def step(self, e: AuditEntry) -> str:
        v = self.verdict
        if e.seq != v.head_seq + 1:
            return f"sequence gap: expected {v.head_seq + 1}, found {e.seq}"
        if e.prev_hash != v.head_hash:
            return "prev_hash does not match the previous entry's hash"
        if e.action == KEYED_MARKER and e.actor == "vigil":
            self.segment_key = str(e.detail.get("key_id"))
            v.keyed_from = v.keyed_from or e.seq
        reason = self._content(e)
        v.head_seq, v.head_hash = e.seq, e.hash
        return reason

    def _content(self, e: AuditEntry) -> str:
        v = self.verdict
        if self.segment_key is None:
            v.legacy += 1
            if entry_hash(e.prev_hash, e.seq, e.at, e.actor, e.action, e.target, e.detail) != e.hash:
                return "content does not match its hash (entry was modified)"
            return ""
        if self.key is None:
            v.unchecked += 1
            return ""
        if self.segment_key != self.key.key_id:
            return (f"entries from the marker before this one are keyed with key {self.segment_key}, "
                    f"but the key given is {self.key.key_id}")
        if not keyed_by(self.key, e):
            return ("content does not match its keyed hash (the entry was modified and re-hashed without the "
                    "key, or written by a process without the key)")
        return ""


def verify_chain(entries: Iterable[AuditEntry], key: ChainKey | None = None) -> ChainVerdict:
    """Walk the chain once (entries may be a stream): links, sequence and, for keyed
    entries when `key` is given, the HMAC. Stops at the first bad entry."""
    walk = _Walk(key)
    for e in entries:
        walk.verdict.checked += 1
        reason = walk.step(e)
        if reason:
            walk.verdict.ok, walk.verdict.first_bad_seq, walk.verdict.reason = False, e.seq, reason
            break
    return walk.verdict
