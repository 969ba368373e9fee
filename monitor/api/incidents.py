"""Incidents: read them (role viewer), ack and silence them (role operator; both are
audited under the token's name)."""
from __future__ import annotations

import time
from collections import defaultdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from alerts.lifecycle import LifecycleConflict
from alerts.outbox import OutboxStatus
from detectors.records import FindingKind
from monitor.api.deps import AUTH_RESPONSES, IncidentDep, OperatorDep, ViewerDep, VigilDep, in_scope, model_or_404
from monitor.api.limits import WRITE_LIMIT_RESPONSES
from monitor.api.pagination import OffsetQuery, Page, limit_query, next_by_cursor
from monitor.api.responses import errors
from monitor.api.schemas import MAX_ID, IncidentOut, SilenceRequest
from monitor.store.repository import Store
from monitor.store.tables import ActionRow, DriftReportRow, IncidentRow

REPORT_GIVEN_UP_S = 3600.0  # a report rendered after its incident resolved comes within minutes
DRIFT_KINDS = (FindingKind.FEATURE_DRIFT.value, FindingKind.PREDICTION_DRIFT.value)  # what a drift report shows

# Every route here names a model or an incident that may not exist, and takes parameters.
router = APIRouter(prefix="/v1/incidents", tags=["incidents"], responses={**AUTH_RESPONSES, **errors(404, 422)})


def incidents_out(store: Store, rows: list[IncidentRow]) -> list[IncidentOut]:
    """Each incident as every answer shows it: with its actions and its drift report's link.
    The list, ack and silence once answered `actions: []`, `drift_report: null` (a client saw
    no rollback); one query each for a whole page, and the report's key only (it is large)."""
    ids = [r.id for r in rows]
    actions: dict[int, list[dict[str, Any]]] = defaultdict(list)
    with store.tx() as s:
        for a in s.scalars(select(ActionRow).where(ActionRow.incident_id.in_(ids)).order_by(ActionRow.id)):
            if a.incident_id is not None:  # always, by the filter; said for the type checker
                actions[a.incident_id].append(a.to_dict())
        reported = set(s.scalars(select(DriftReportRow.incident_id).where(DriftReportRow.incident_id.in_(ids))))
    return [IncidentOut.from_row(r, actions[r.id], r.id in reported) for r in rows]


BeforeQuery = Annotated[int | None, Query(ge=1, le=MAX_ID, description="only incidents with a smaller id "
                                                                     "(older): the `next` link sets it")]


@router.get("", response_model=Page[IncidentOut])
def list_incidents(_: ViewerDep, vigil: VigilDep, request: Request, model: str | None = None,
                   status: Literal["open", "resolved"] | None = None,
                   limit: Annotated[int, limit_query(500)] = 50,
                   offset: OffsetQuery = 0, before_id: BeforeQuery = None) -> Page[IncidentOut]:
    """Newest first, `limit` a page; follow `next` for the rest."""
    # A name no longer configured (a model removed or renamed) still lists its incidents; a
    # name with none is a 404 listing the models (a typo must not read as "no incidents").
    if model is not None and model not in {m.name for m in vigil.config.models} \
            and not vigil.store.count_incidents(model=model, status=None):
        model_or_404(vigil, model)
    # `next` is a cursor (the last id shown), not offset + limit: newest first, an incident
    # opened between two pages would push the list down (the last one shown again), and one
    # leaving the filter (resolved, under status=open) would pull it up (one never shown).
    rows = vigil.store.incidents(model=model, status=status, limit=limit + 1, offset=offset, before_id=before_id)
    page = rows[:limit]
    total = vigil.store.count_incidents(model=model, status=status)
    return Page[IncidentOut](items=incidents_out(vigil.store, page), total=total,
                             next=next_by_cursor(request, cursor_param="before_id",
                                                 last=page[-1].id if page else None, more=len(rows) > limit))


@router.get("/{incident_id}", response_model=IncidentOut)
def get_incident(_: ViewerDep, vigil: VigilDep, row: IncidentDep) -> IncidentOut:
    out = incidents_out(vigil.store, [row])[0]
    held = [m for m in vigil.store.outbox_for_prefix(f"incident:{row.id}") if m.status == OutboxStatus.SUPPRESSED]
    out.suppressed = [{"outbox_id": m.id, "notifier": m.notifier, "key": m.key, "kind": m.kind,
                       "change": m.payload.get("change") if isinstance(m.payload, dict) else None,
                       "queued_at": m.created_at, "suppressed_at": m.next_attempt_at, "why": m.last_error}
                      for m in held]
    return out


@router.get("/{incident_id}/drift-report", response_class=HTMLResponse)
def drift_report(_: ViewerDep, vigil: VigilDep, row: IncidentDep) -> HTMLResponse:
    html = vigil.store.drift_report(row.id)
    drift = any(isinstance(f, dict) and f.get("kind") in DRIFT_KINDS for f in row.findings)
    if html is None and drift and row.resolved_at is not None and vigil.now() - row.resolved_at > REPORT_GIVEN_UP_S:
        # Resolved long since and still none (its queued render dropped by a restart or reload):
        # nothing asks for it again, and "try again in a minute" was a promise kept for ever.
        raise HTTPException(404, f"incident {row.id}: its drift report was not rendered before the incident "
                                 "resolved, and will not be now; its findings carry the drift statistics")
    if html is None and drift:
        # Rendered off the cycle, between sweeps: after a sweep that opened many, minutes later.
        raise HTTPException(404, f"incident {row.id}: its drift report is not rendered yet (Evidently renders it "
                                 "after the incident opens, between sweeps); try again in a minute",
                            headers={"Retry-After": "60"})
    if html is None:
        raise HTTPException(404, f"incident {row.id} has no drift report (no drift findings)")
    return HTMLResponse(html)


@router.post("/{incident_id}/ack", response_model=IncidentOut, responses={**WRITE_LIMIT_RESPONSES, **errors(409)})
def ack(who: OperatorDep, vigil: VigilDep, row: IncidentDep) -> IncidentOut:
    in_scope(vigil, who, row.model, "ack", row.id)
    try:
        # The API shows the incident as it is: the ack is of its own severity (Operator.acknowledge).
        acked = vigil.operator.acknowledge(row.id, who.actor, time.time(), as_is=True)
        return incidents_out(vigil.store, [acked])[0]
    except LifecycleConflict as e:  # resolved: the lifecycle says no
        raise HTTPException(409, str(e)) from None


@router.post("/{incident_id}/silence", response_model=IncidentOut,
             responses={**WRITE_LIMIT_RESPONSES, **errors(409)})
def silence(who: OperatorDep, vigil: VigilDep, row: IncidentDep, body: SilenceRequest) -> IncidentOut:
    in_scope(vigil, who, row.model, "silence", row.id)
    try:
        done = vigil.operator.silence(row.id, who.actor, body.duration_s, body.reason, time.time())
        return incidents_out(vigil.store, [done])[0]
    except LifecycleConflict as e:
        raise HTTPException(409, str(e)) from None
