"""The audit log, page by page, with a verdict on the whole hash chain: a reader sees
at once whether any entry was altered or removed."""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from alerts.audit import verify_chain
from monitor.api.deps import VigilDep
from monitor.api.schemas import MAX_ID

router = APIRouter(tags=["audit"])


@router.get("/v1/audit")
def audit(vigil: VigilDep, since_seq: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
          limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
    entries = vigil.store.audit_entries(since_seq=since_seq, limit=limit)
    # The chain is checked whole, not just this page: a tampered entry anywhere voids it.
    verdict = verify_chain(vigil.store.audit_entries())
    return {"entries": [e.__dict__ for e in entries],
            "chain": {"ok": verdict.ok, "checked": verdict.checked, "first_bad_seq": verdict.first_bad_seq,
                      "reason": verdict.reason}}
