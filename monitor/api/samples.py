"""`POST /v1/samples`: feature samples pushed by the serving side, for drift detection.
monitor.api.ingest decides what a valid record is; a bad one rejects the whole request.
Role ingest (a token for the serving side that may do nothing else), operator or admin."""
from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter

from monitor.api.deps import AUTH_RESPONSES, IngestDep, VigilDep, in_scope, model_or_404
from monitor.api.ingest import validate_records
from monitor.api.responses import errors
from monitor.api.schemas import SamplesAccepted, SamplesRequest

router = APIRouter(tags=["samples"], responses=AUTH_RESPONSES)


@router.post("/v1/samples", status_code=202, response_model=SamplesAccepted, responses=errors(404, 422))
def samples(who: IngestDep, vigil: VigilDep, body: SamplesRequest) -> dict[str, Any]:
    m = model_or_404(vigil, body.model)
    in_scope(vigil, who, m.name, "samples")
    rows = validate_records(m, body.records, time.time())  # InvalidRecords: a 422 naming each field (errors.py)
    n = vigil.store.add_samples(m.name, rows)  # vigil_samples_total counts it when a cycle reads it, once
    return {"accepted": n, "model": m.name}
