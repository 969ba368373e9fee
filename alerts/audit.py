"""Tamper-evident audit log: each entry's hash covers its content and the previous hash.

Editing, deleting or reordering any entry breaks every hash after it, which
`verify_chain` reports with the first sequence number that no longer matches.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

GENESIS = "0" * 64


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


def entry_hash(prev_hash: str, seq: int, at: float, actor: str, action: str, target: str,
               detail: dict[str, Any]) -> str:
    body = json.dumps(
        {"prev": prev_hash, "seq": seq, "at": round(at, 6), "actor": actor, "action": action,
         "target": target, "detail": detail},
        sort_keys=True, separators=(",", ":"), default=str,
    )
    return hashlib.sha256(body.encode()).hexdigest()


@dataclass
class ChainVerdict:
    ok: bool
    checked: int
    first_bad_seq: int | None = None
    reason: str = ""


def verify_chain(entries: Iterable[AuditEntry]) -> ChainVerdict:
    prev = GENESIS
    expected_seq = 1
    n = 0
    for e in entries:
        n += 1
        if e.seq != expected_seq:
            return ChainVerdict(False, n, e.seq, f"sequence gap: expected {expected_seq}, found {e.seq}")
        if e.prev_hash != prev:
            return ChainVerdict(False, n, e.seq, "prev_hash does not match the previous entry's hash")
        h = entry_hash(e.prev_hash, e.seq, e.at, e.actor, e.action, e.target, e.detail)
        if h != e.hash:
            return ChainVerdict(False, n, e.seq, "content does not match its hash (entry was modified)")
        prev = e.hash
        expected_seq += 1
    return ChainVerdict(True, n)
