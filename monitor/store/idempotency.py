"""API Idempotency-Key answers: one row per (key, scope), the first answer a retry gets back.

Written in the caller's transaction, so that a rollback's intent and the answer that points
at it are committed together: a crash (kill -9) after the rollback moved anything but before
the API stored its answer left the key unknown, and the client's retry started a second
rollback (of whatever was deployed since)."""
from __future__ import annotations

from typing import Any

from sqlalchemy import delete
from sqlalchemy.orm import Session

from detectors.records import json_safe
from monitor.store.tables import IdempotencyRow

# How long an Idempotency-Key answers retries. Kept for ever, a key reused days later (one
# derived from the request, a runbook's) replayed an old `done` and moved nothing. The purge
# deletes answers older than this (monitor/store/retention.py).
IDEMPOTENCY_TTL_S = 86400.0


def put_response(s: Session, scope: str, key: str, request_hash: str, status_code: int, response: dict[str, Any],
                 now: float, *, replace_before: float) -> None:
    """Store the answer for `key`; one stored before `replace_before` is replaced, a newer
    one makes the transaction fail (IntegrityError at flush: another request has the key)."""
    s.execute(delete(IdempotencyRow).where(IdempotencyRow.key == key, IdempotencyRow.scope == scope,
                                           IdempotencyRow.created_at < replace_before))
    s.add(IdempotencyRow(key=key, scope=scope, request_hash=request_hash, status_code=status_code,
                         response=json_safe(response), created_at=now))
    s.flush()
