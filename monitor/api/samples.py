"""`POST /v1/samples`: feature samples pushed by the serving side, for drift detection.
monitor.api.ingest decides what a valid record is; a bad one rejects the whole request.
Role ingest (a token for the serving side that may do nothing else), operator or admin.

With an `Idempotency-Key`, a batch retried within 24 h (the client's timeout fired after
the batch was stored) is answered as the first time and stored once: stored twice, its
rows weighed double in the drift window. The key's answer and the rows are written in one
transaction, so a crash between them cannot store the rows without the key."""
from __future__ import annotations

import hashlib
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from monitor.api.deps import AUTH_RESPONSES, IngestDep, VigilDep, in_scope, model_or_404
from monitor.api.idempotency import DIFFERENT_BODY, IDEMPOTENCY_TTL_S, REPLAYED, IdempotencyKey, live
from monitor.api.ingest import validate_records
from monitor.api.responses import errors
from monitor.api.schemas import SamplesAccepted, SamplesRequest
from monitor.store import idempotency
from monitor.vigil import Vigil

router = APIRouter(tags=["samples"], responses=AUTH_RESPONSES)


async def _body_sha256(request: Request) -> str:
    """The request body's hash: a retry sends the same bytes (hashing the parsed records again
    would cost more than storing them)."""
    return hashlib.sha256(await request.body()).hexdigest()


BodyHash = Annotated[str, Depends(_body_sha256)]


@router.post("/v1/samples", status_code=202, response_model=SamplesAccepted, responses=errors(404, 422))
def samples(who: IngestDep, vigil: VigilDep, body: SamplesRequest, response: Response, body_hash: BodyHash,
            idempotency_key: IdempotencyKey = None) -> dict[str, Any]:
    m = model_or_404(vigil, body.model)
    in_scope(vigil, who, m.name, "samples")
    scope = f"samples:{m.name}"
    if idempotency_key and (prior := _replay(vigil, scope, idempotency_key, body_hash, response)) is not None:
        return prior
    now = time.time()
    rows = validate_records(m, body.records, now)  # InvalidRecords: a 422 naming each field (errors.py)
    answer = {"accepted": len(rows), "model": m.name}
    if not idempotency_key:
        vigil.store.add_samples(m.name, rows)  # vigil_samples_total counts it when a cycle reads it, once
        return answer

    def keep(s: Session) -> None:
        idempotency.put_response(s, scope, idempotency_key, body_hash, 202, answer, now,
                                 replace_before=now - IDEMPOTENCY_TTL_S)
    try:
        vigil.store.add_samples(m.name, rows, keep)
    except IntegrityError:  # the same key's other request stored its batch first: that one stands
        prior = _replay(vigil, scope, idempotency_key, body_hash, response)
        if prior is None:
            raise
        return prior
    return answer


def _replay(vigil: Vigil, scope: str, key: str, body_hash: str, response: Response) -> dict[str, Any] | None:
    """The answer stored under `key`, marked replayed; None when none is live; 422 for another body."""
    prior = live(vigil.store.idempotent_response(scope, key), time.time())
    if prior is None:
        return None
    if prior.request_hash != body_hash:
        raise HTTPException(422, DIFFERENT_BODY)
    response.headers[REPLAYED] = "true"
    return dict(prior.response)
