"""`Idempotency-Key` on the API's writes (rollback, samples): a request retried within 24 h
gets the first answer back instead of being carried out twice; a different body under the
same key is refused (422). The answers are kept in the store (monitor/store/idempotency.py),
written in the same transaction as what the request did, and purged once expired."""
from __future__ import annotations

from typing import Annotated

from fastapi import Header
from pydantic import AfterValidator

from monitor.store.idempotency import IDEMPOTENCY_TTL_S
from monitor.store.tables import IdempotencyRow

REPLAYED = "Idempotent-Replayed"  # the header a replayed answer carries
DIFFERENT_BODY = "Idempotency-Key was already used with a different request body"


def _key_given(key: str | None) -> str | None:
    # An empty key (a client's unset variable) was taken as none: each retry a new request.
    if key is not None and not key.strip():
        raise ValueError("expected a key unique to this request, sent again with each retry; got an empty one")
    return key


# The document says what _key_given checks (a character besides spaces); it words the 422.
IdempotencyKey = Annotated[str | None, Header(max_length=200, json_schema_extra={"minLength": 1, "pattern": r"\S"}),
                           AfterValidator(_key_given)]


def live(row: IdempotencyRow | None, now: float) -> IdempotencyRow | None:
    """The stored answer if it still answers retries at `now`."""
    return row if row is not None and row.created_at >= now - IDEMPOTENCY_TTL_S else None
