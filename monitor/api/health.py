"""Liveness, readiness and Prometheus metrics: what orchestrators and scrapers poll."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from monitor.api.deps import VigilDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(vigil: VigilDep) -> JSONResponse:
    try:
        outbox: dict[str, int] = vigil.store.outbox_counts()
        store_error: str | None = None
    except Exception as e:  # whatever broke the store, readiness reports it rather than failing itself
        outbox, store_error = {}, str(e)
    sources: dict[str, dict[str, Any]] = {
        name: {"status": str(s.status), "url": s.url, "detail": s.detail, "checked_at": s.checked_at}
        for name, s in vigil.readiness().items()}
    store_ok = store_error is None
    down = [n for n, s in sources.items() if s["status"] == "down"]
    body = {"status": "ready" if store_ok and not down else ("degraded" if store_ok else "not ready"),
            "store": "up" if store_ok else f"down: {store_error}", "sources": sources, "outbox": outbox}
    # A down source makes Vigil degraded (and says so) but the API, rollback included,
    # must stay reachable: only a dead store makes it not ready.
    return JSONResponse(status_code=200 if store_ok else 503, content=body)


@router.get("/metrics")
def metrics(vigil: VigilDep) -> Response:
    return Response(generate_latest(vigil.metrics.registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/", include_in_schema=False)
def root() -> PlainTextResponse:
    return PlainTextResponse("Vigil API: see /docs\n")
