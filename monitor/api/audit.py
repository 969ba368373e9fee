"""The audit log, page by page, with a verdict on the whole log: its hash chain (keyed
when a key is configured) and the agreement of the signed checkpoints kept outside the
database, so a reader sees at once whether any entry was altered, removed or the tail cut.
Role viewer."""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from monitor.api.deps import AUTH_RESPONSES, ViewerDep, VigilDep
from monitor.api.responses import errors
from monitor.api.schemas import MAX_ID
from monitor.audit.verify import ReportCache

router = APIRouter(tags=["audit"], responses={**AUTH_RESPONSES, **errors(422)})
_REPORTS = ReportCache()  # seconds of work per 100k entries: never once per request


@router.get("/v1/audit")
def audit(_: ViewerDep, vigil: VigilDep, since_seq: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
          limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
    entries = vigil.store.audit_entries(since_seq=since_seq, limit=limit)
    # The log is checked whole, not just this page: a tampered entry anywhere voids it.
    settings = vigil.checkpoints.settings
    report = _REPORTS.report(vigil.store, settings.key, settings.checkpoint_file)
    return {"entries": [e.__dict__ for e in entries], "chain": report.to_dict()}
