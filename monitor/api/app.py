"""Vigil's HTTP API (FastAPI; the OpenAPI document at /openapi.json is the contract).

Reads are open; writes (rollback, samples, ack, silence) need `Authorization: Bearer
<api.token>`. Bad input gets a 4xx whose body names the field and what was expected;
an unexpected error is a 500 with a request id, never a stack trace.

One router per resource (health, incidents, rollback, audit, samples, slack); what they
share (the Vigil, the caller, a model or incident from the path) is in deps.py.
"""
from __future__ import annotations

from fastapi import FastAPI

from monitor.api import audit, health, incidents, rollback, samples, slack
from monitor.api.errors import install_error_handlers
from monitor.api.limits import EdgeLimits
from monitor.vigil import Vigil


def create_app(vigil: Vigil) -> FastAPI:
    app = FastAPI(title="Vigil", version="0.1.0",
                  description="AIOps monitoring and root cause for ML models in production")
    app.state.vigil = vigil
    app.state.rollback_locks = rollback.KeyedLocks()
    install_error_handlers(app)
    app.add_middleware(EdgeLimits, settings=lambda: app.state.vigil.config.api)  # rate and size, before any route
    for module in (health, incidents, rollback, audit, samples, slack):
        app.include_router(module.router)
    return app
