"""`GET /v1/models/{name}/canary`: the canary's latest verdict table and its runs.
Role viewer. A model without `canary` configured is a 404 naming the config key."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from monitor.api.deps import AUTH_RESPONSES, ModelDep, ViewerDep, VigilDep
from monitor.api.responses import errors
from monitor.api.schemas import CanaryOut, CanaryRunOut, CanaryVerdictOut
from monitor.store.canary import latest_verdicts, runs

router = APIRouter(tags=["canary"], responses={**AUTH_RESPONSES, **errors(404, 422)})


@router.get("/v1/models/{name}/canary", response_model=CanaryOut)
def canary(_: ViewerDep, vigil: VigilDep, m: ModelDep,
           history: Annotated[int, Query(ge=1, le=100)] = 1) -> CanaryOut:
    """The last `history` verdicts, newest first: each metric with both versions' medians,
    the effect, the U test's p-value and the thresholds; and every challenger's run."""
    if m.canary is None:
        raise HTTPException(404, f"model {m.name} has no canary configured (models[].canary in vigil.yaml)")
    with vigil.store.tx() as s:
        verdicts = [CanaryVerdictOut(**r.to_dict()) for r in latest_verdicts(s, m.name, history)]
        all_runs = [CanaryRunOut(**r.to_dict()) for r in runs(s, m.name)]
    return CanaryOut(model=m.name, alias=m.canary.alias, version_label=m.canary.version_label,
                     promote_after_cycles=m.canary.promote_after_cycles, verdicts=verdicts, runs=all_runs)
