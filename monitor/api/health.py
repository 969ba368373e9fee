"""Liveness, readiness and Prometheus metrics: what orchestrators and scrapers poll."""
from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from monitor.api.deps import VigilDep
from monitor.api.schemas import Readiness
from monitor.liveness import ReadinessRules, cycle_problems, stored_last_cycles
from monitor.redact import redact_obj
from monitor.vigil import Vigil

router = APIRouter(tags=["health"])
log = logging.getLogger("vigil.api")


# async: answered on the event loop, never queued behind the worker threads. /readyz and
# /metrics read the store in those threads; a PostgreSQL that stops answering holds one per
# probe and scrape, and once all 40 were held a sync /healthz timed out and the kubelet
# restarted every replica (tests/unit/deploy/test_probes.py).
@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", response_model=Readiness, responses={
    503: {"model": Readiness, "description": "not ready: `reasons` says why (store down, cycles failing or "
                                             "stale, shutting down)"}})
def readyz(vigil: VigilDep) -> JSONResponse:
    try:
        outbox: dict[str, int] = vigil.store.outbox_counts()
        store_error: str | None = None
    except Exception as e:  # whatever broke the store, readiness reports it rather than failing itself
        outbox, store_error = {}, str(e)
    sources: dict[str, dict[str, Any]] = {
        name: {"status": str(s.status), "url": s.url, "detail": s.detail, "checked_at": s.checked_at}
        for name, s in vigil.readiness().items()}
    cycles = _cycles(vigil, read_store=store_error is None)
    reasons = ([f"store down: {store_error}"] if store_error else []) + cycles["problems"]
    if vigil.metrics.liveness.stopping:
        reasons.append("shutting down: finishing running cycles and draining the outbox")
    if sources and all(s["status"] == "unknown" for s in sources.values()):
        # Ready means Vigil can see: until a source has answered (the probe at start, then
        # every interval, or a cycle), nobody knows that it can.
        reasons.append("no source checked yet: waiting for the first check of " + ", ".join(sources))
    down = [n for n, s in sources.items() if s["status"] == "down"]
    body = {"status": "not ready" if reasons else ("degraded" if down else "ready"), "reasons": reasons,
            "store": "up" if store_error is None else f"down: {store_error}", "sources": sources,
            "outbox": outbox, "cycles": cycles}
    # A down source makes Vigil degraded (and says so) but the API, rollback included,
    # must stay reachable: a dead store, or cycles that keep failing or stopped, make it
    # not ready, since then nothing is being watched while everything looks fine.
    # Redacted whole: /readyz needs no token, and an error may quote a URL with its password.
    return JSONResponse(status_code=503 if reasons else 200, content=redact_obj(body))


def _cycles(vigil: Vigil, *, read_store: bool) -> dict[str, Any]:
    """The cycles' part of readiness: per model what the last cycles did, and the problems."""
    sched, live = vigil.config.schedule, vigil.metrics.liveness
    names = [m.name for m in vigil.config.models]
    if read_store:
        _merge_stored(vigil, names)
    seen = live.snapshot()
    rules = ReadinessRules(sched.unready_after_failed_cycles, sched.unready_after_intervals * sched.interval)
    problems = cycle_problems(names, seen, vigil.now(), live.started_at, rules)
    models = {n: {"last_success_at": seen[n].last_success_at, "consecutive_failures": seen[n].consecutive_failures,
                  "last_error": seen[n].last_error} for n in names if n in seen}
    return {"problems": problems, "models": models}


def _merge_stored(vigil: Vigil, names: list[str]) -> None:
    """Cycles any process committed count (a `vigil serve` has no cycles of its own to see)."""
    try:
        vigil.metrics.liveness.saw_stored(stored_last_cycles(vigil.store, names))
    except Exception:  # the store's own line in /readyz says what broke; /metrics must still answer
        log.debug("could not read the last cycle times from the store", exc_info=True)


# Prometheus' text exposition format (the version prometheus_client writes), not JSON.
METRICS_RESPONSE: dict[int | str, dict[str, Any]] = {200: {"description": "Prometheus text exposition format",
                          "content": {"text/plain": {"schema": {"type": "string"}}}}}


@router.get("/metrics", response_class=PlainTextResponse, responses=METRICS_RESPONSE)
def metrics(vigil: VigilDep) -> Response:
    _merge_stored(vigil, [m.name for m in vigil.config.models])
    body = generate_latest(vigil.metrics.registry) + generate_latest(vigil.metrics.process_registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


@router.get("/", include_in_schema=False)
def root() -> PlainTextResponse:
    return PlainTextResponse("Vigil API: see /docs\n")
