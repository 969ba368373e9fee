"""`GET /v1/models/{name}/performance`: the last cycle's performance report of a model:
per version and window, realised figures (once enough labels arrived) beside the CBPE
estimate, with coverage and label delay, and the reference they are judged against."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException

from monitor.api.deps import AUTH_RESPONSES, ModelDep, ViewerDep, VigilDep
from monitor.api.responses import errors
from monitor.api.schemas import PerformanceOut

router = APIRouter(tags=["performance"], responses=AUTH_RESPONSES)


@router.get("/v1/models/{name}/performance", response_model=PerformanceOut, responses=errors(404))
def performance(_: ViewerDep, vigil: VigilDep, m: ModelDep) -> dict[str, Any]:
    if m.performance is None:
        raise HTTPException(404, f"model {m.name!r} has no `performance` configured")
    report = vigil.store.labels.report(m.name)
    if report is None:
        raise HTTPException(404, f"no performance report for {m.name!r} yet: it comes with the model's next cycle")
    return report
