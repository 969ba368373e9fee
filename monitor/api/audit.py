"""The audit log, page by page, with a verdict on the whole log: its hash chain (keyed
when a key is configured) and the agreement of the signed checkpoints kept outside the
database, so a reader sees at once whether any entry was altered, removed or the tail cut.
Role viewer."""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import Field

from monitor.api.deps import AUTH_RESPONSES, ViewerDep, VigilDep
from monitor.api.pagination import Page, limit_query, next_by_cursor
from monitor.api.responses import errors
from monitor.api.schemas import MAX_ID
from monitor.audit.verify import ReportCache

router = APIRouter(tags=["audit"], responses={**AUTH_RESPONSES, **errors(422)})
_REPORTS = ReportCache()  # seconds of work per 100k entries: never once per request


class AuditPage(Page[dict[str, Any]]):
    """A page of the log (oldest first) and the verdict on the whole log."""

    chain: dict[str, Any] = Field(description="the hash chain and checkpoints checked over the whole log")


@router.get("/v1/audit", response_model=AuditPage)
def audit(_: ViewerDep, vigil: VigilDep, request: Request,
          since_seq: Annotated[int, Query(ge=0, le=MAX_ID, description="entries after this seq: the `next` "
                                                                          "link sets it")] = 0,
          limit: Annotated[int, limit_query(1000)] = 100) -> AuditPage:
    entries = vigil.store.audit_entries(since_seq=since_seq, limit=limit)
    total = vigil.store.count_audit(since_seq=since_seq)
    # The log is checked whole, not just this page: a tampered entry anywhere voids it.
    settings = vigil.checkpoints.settings
    report = _REPORTS.report(vigil.store, settings.key, settings.checkpoint_file)
    last = entries[-1].seq if entries else None
    return AuditPage(items=[e.__dict__ for e in entries], total=total, chain=report.to_dict(),
                     next=next_by_cursor(request, cursor_param="since_seq", last=last, more=total > len(entries)))
