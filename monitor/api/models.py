"""The monitored models (role viewer): what each serves, its open incident, its last
cycle, what it cannot see, and its drift per feature now.

All of it comes from the store (monitor/store/model_now.py, written by each cycle), so
a `vigil serve` or another replica answers with the last cycle whoever ran it; a model
never cycled has no last cycle, no blind list and no drift yet (null and empty, never
a guess).
"""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from monitor.api.deps import AUTH_RESPONSES, ModelDep, ViewerDep, VigilDep
from monitor.api.pagination import OffsetQuery, Page, limit_query, next_by_offset
from monitor.api.responses import errors
from monitor.config import ModelConfig
from monitor.cycle.deploys import same_alias
from monitor.store.model_now import ModelNowRow, row_drift
from monitor.store.tables import ModelStateRow
from monitor.vigil import Vigil

router = APIRouter(prefix="/v1/models", tags=["models"], responses={**AUTH_RESPONSES, **errors(422)})


class OpenIncident(BaseModel):
    id: int
    severity: str
    title: str
    opened_at: float
    acknowledged_by: str | None


class LastCycle(BaseModel):
    at: float | None = Field(description="the cycle time of the model's last committed cycle (any replica)")
    step: str | None = Field(None, description="what the last cycle did: opened, updated, resolved, quiet …")
    severity: str | None = None
    duration_s: float | None = None


class DriftThresholds(BaseModel):
    statistic: str
    warning: float
    critical: float


class ModelOut(BaseModel):
    name: str
    registry_name: str
    alias: str
    serving_version: str | None = Field(description="the version the alias pointed at when last seen")
    services: list[str]
    features: list[str]
    kpis: list[str]
    slos: list[str]
    open_incident: OpenIncident | None
    last_cycle: LastCycle
    blind: list[str] = Field(description="what the last cycle could not see (a source down, too little data)")
    drift_thresholds: DriftThresholds
    drift: dict[str, dict[str, float]] = Field(
        description="feature -> statistic -> value, from the last cycle (a non-finite value is left out)")


def _model_out(vigil: Vigil, m: ModelConfig, s: Session) -> ModelOut:
    state = s.get(ModelStateRow, m.name)
    now = s.get(ModelNowRow, m.name)
    inc = vigil.store.open_incident(s, m.name)
    policy = vigil.config.policy_for(m)
    return ModelOut(
        name=m.name, registry_name=m.registry, alias=m.alias,
        # A version read from another alias (registry_name or alias edited since) is not this one's.
        serving_version=state.alias_version if state and same_alias(state, m) else None, services=list(m.services),
        features=[f.name for f in m.features], kpis=[k.name for k in m.kpis], slos=[x.name for x in m.slos],
        open_incident=OpenIncident(id=inc.id, severity=inc.severity, title=inc.title, opened_at=inc.opened_at,
                                   acknowledged_by=inc.acknowledged_by) if inc else None,
        last_cycle=LastCycle(at=now.at if now else (state.last_cycle_at if state else None),
                             step=now.step if now else None, severity=now.severity if now else None,
                             duration_s=now.duration_s if now else None),
        blind=list(now.blind) if now else [],
        drift_thresholds=DriftThresholds(statistic=policy.drift_statistic, warning=policy.drift_warning,
                                         critical=policy.drift_critical),
        drift={f: {k: v for k, v in stats.items() if v is not None}
               for f, stats in (row_drift(now) if now else {}).items()},
    )


@router.get("", response_model=Page[ModelOut])
def list_models(_: ViewerDep, vigil: VigilDep, request: Request,
                limit: Annotated[int, limit_query(500)] = 100, offset: OffsetQuery = 0) -> Page[ModelOut]:
    """Every monitored model, in config order."""
    models = vigil.config.models
    with vigil.store.tx() as s:
        items = [_model_out(vigil, m, s) for m in models[offset:offset + limit]]
    return Page[ModelOut](items=items, total=len(models),
                          next=next_by_offset(request, offset=offset, limit=limit, total=len(models)))


@router.get("/{name}", response_model=ModelOut, responses=errors(404))
def get_model(_: ViewerDep, vigil: VigilDep, m: ModelDep) -> ModelOut:
    with vigil.store.tx() as s:
        return _model_out(vigil, m, s)


