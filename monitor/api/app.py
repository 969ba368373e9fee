"""Vigil's HTTP API (FastAPI; the OpenAPI document at /openapi.json is the contract).

Every route but liveness, readiness, metrics and the docs needs `Authorization: Bearer
<token>` of a named API token (README: Identities and roles): the middleware in auth.py
checks it from the headers, before any body is read, and each route names the least role
it needs (deps.py). Slack's callback is signed by Slack instead. Bad input gets a 4xx
whose body names the field and what was expected; an unexpected error is a 500 with a
request id, never a stack trace.

One router per resource (health, incidents, rollback, audit, samples, labels, performance, slack); what they
share (the Vigil, the caller, a model or incident from the path) is in deps.py.
"""
from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from starlette.concurrency import run_in_threadpool

from monitor.api import (
    audit,
    canary,
    docs,
    health,
    incidents,
    labels,
    models,
    performance,
    rollback,
    samples,
    silences,
    slack,
)
from monitor.api.auth import BearerAuth, TokenTables
from monitor.api.errors import install_error_handlers
from monitor.api.limits import EdgeLimits
from monitor.api.openapi import install_openapi
from monitor.api.slack_desk import SlackDesk
from monitor.api.strict_query import refuse_unknown_query
from monitor.vigil import Vigil

WORKER_STOP_S = 5.0  # a Slack action still running at shutdown gets this long (a rollback is a durable intent)


def create_app(vigil: Vigil) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await run_in_threadpool(app.state.slack_desk.worker.close, WORKER_STOP_S)

    # The docs are Vigil's own routes (docs.py: no CDN); ReDoc is off, it would need one.
    app = FastAPI(title="Vigil", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None,
                  swagger_ui_oauth2_redirect_url=None,
                  description="AIOps monitoring and root cause for ML models in production")
    app.state.vigil = vigil
    app.state.rollback_locks = rollback.KeyedLocks()
    # Both read app.state.vigil on each use: a SIGHUP reload swaps it (monitor/daemon.py).
    app.state.slack_desk = SlackDesk(lambda: app.state.vigil)
    install_error_handlers(app)
    # The last added runs first: the token (from the headers alone), then size and rate, then routes;
    # neither reads a body it is going to refuse.
    app.add_middleware(EdgeLimits, settings=lambda: app.state.vigil.config.api)
    app.add_middleware(BearerAuth, tables=TokenTables(lambda: app.state.vigil.config))
    for module in (health, slack, docs):  # polled or called by machines that may add their own query
        app.include_router(module.router)
    for module in (incidents, models, rollback, audit, samples, canary, labels, performance, silences):
        app.include_router(module.router, dependencies=[Depends(refuse_unknown_query)])
    install_openapi(app)
    return app
