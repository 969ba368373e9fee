"""The API's dependencies, each named once so a route reads as its signature:
`vigil: VigilDep`, `actor: ActorDep` (a write needs the bearer token), `incident:
IncidentDep` and `m: ModelDep` (the path names one, or the answer is a 404).

An `ActorDep` goes before the resource it guards in a signature: dependencies run in
that order, and a caller without the token learns nothing about what exists.
"""
from __future__ import annotations

import hashlib
import secrets
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Path, Request

from monitor.api.schemas import MAX_ID
from monitor.config import ModelConfig
from monitor.store.repository import IncidentRow
from monitor.vigil import Vigil


def get_vigil(request: Request) -> Vigil:
    vigil: Vigil = request.app.state.vigil  # set once by create_app
    return vigil


VigilDep = Annotated[Vigil, Depends(get_vigil)]


def require_token(vigil: VigilDep, authorization: Annotated[str | None, Header()] = None) -> str:
    """The caller's name for the audit log, once its bearer token matches `api.token`."""
    expected = vigil.config.api.token
    if not expected:
        raise HTTPException(503, "write endpoints are disabled: set api.token to ${ENV_VAR} in the config")
    if not authorization or not authorization.lower().startswith("bearer "):
        raise HTTPException(401, "missing bearer token (Authorization: Bearer <token>)",
                            headers={"WWW-Authenticate": "Bearer"})
    token = authorization.split(" ", 1)[1].strip()
    if not secrets.compare_digest(token.encode(), expected.encode()):
        raise HTTPException(403, "invalid token")
    # The audit log names the caller by a token fingerprint, never the token itself.
    return "api:" + hashlib.sha256(token.encode()).hexdigest()[:8]


ActorDep = Annotated[str, Depends(require_token)]


def model_or_404(vigil: Vigil, name: str) -> ModelConfig:
    """For a model named in a query or a body; a path uses `ModelDep`."""
    try:
        return vigil.config.model(name)
    except KeyError:
        known = ", ".join(m.name for m in vigil.config.models)
        raise HTTPException(404, f"unknown model {name!r}; monitored models: {known}") from None


def model_from_path(vigil: VigilDep, name: str) -> ModelConfig:
    return model_or_404(vigil, name)


ModelDep = Annotated[ModelConfig, Depends(model_from_path)]


def incident_from_path(vigil: VigilDep, incident_id: Annotated[int, Path(ge=1, le=MAX_ID)]) -> IncidentRow:
    row = vigil.store.incident(incident_id)
    if row is None:
        raise HTTPException(404, f"incident {incident_id} not found")
    return row


IncidentDep = Annotated[IncidentRow, Depends(incident_from_path)]
