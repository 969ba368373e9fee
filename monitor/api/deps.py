"""The API's dependencies, each named once so a route reads as its signature:
`vigil: VigilDep`; the caller, who must hold a role (`who: ViewerDep`, `OperatorDep`,
`IngestDep`; the token itself was checked by the middleware in auth.py
before the body was read); `incident: IncidentDep` and `m: ModelDep` (the path names
one, or the answer is a 404).

A role dependency goes before the resource it guards in a signature: dependencies run in
that order, and a caller without the role learns nothing about what exists.
"""
from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from monitor.api.auth import IDENTITY, MISSING
from monitor.api.schemas import MAX_ID
from monitor.config import ModelConfig
from monitor.identities import Identity, Role, roles_for, satisfies
from monitor.store.repository import IncidentRow
from monitor.vigil import Vigil

log = logging.getLogger("vigil.api")

# The status codes every protected route may answer, for its OpenAPI entry.
AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "no bearer token, or one that matches no configured API token"},
    403: {"description": "the token's role may not do this (the body names the role needed and the one held), "
                          "or the model is outside the token's `models` (the body names both)"},
    503: {"description": "no API token is configured, or the configured ones cannot be loaded"},
}


def get_vigil(request: Request) -> Vigil:
    vigil: Vigil = request.app.state.vigil  # set once by create_app
    return vigil


VigilDep = Annotated[Vigil, Depends(get_vigil)]

# Declares the bearer scheme in the OpenAPI document; the token was already checked.
_BEARER = HTTPBearer(auto_error=False, description="an API token (README: Identities and roles)")


def refuse_role(who: Identity, needed: Role, what: str = "this") -> HTTPException:
    """403 naming the roles that would do and the one held: 'this needs role operator or admin; ...'."""
    roles = [str(r) for r in roles_for(needed)]
    listed = roles[0] if len(roles) == 1 else ", ".join(roles[:-1]) + " or " + roles[-1]
    return HTTPException(403, f"{what} needs role {listed}; token {who.name!r} has role {who.role}")


class RoleCheck:
    """The caller, once it holds `role` (or one that covers it)."""

    def __init__(self, role: Role) -> None:
        self.role = role

    def __call__(self, request: Request,
                 _: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)] = None) -> Identity:
        who = request.scope.get("state", {}).get(IDENTITY)
        if not isinstance(who, Identity):  # a route the middleware left open by mistake: refuse, never serve
            raise HTTPException(401, MISSING, headers={"WWW-Authenticate": "Bearer"})
        if not satisfies(who.role, self.role):
            raise refuse_role(who, self.role)
        return who


def in_scope(vigil: Vigil, who: Identity, model: str, action: str, incident_id: int | None = None) -> None:
    """Refuse (403, audited as `api.refused`) a write naming a model outside the token's
    `models`. Reads are not scoped: seeing the whole fleet is what a viewer is for."""
    if who.may_act_on(model):
        return
    message = f"model {model!r} is outside the models of token {who.name!r} ({who.scope}): {action} refused"
    target = f"model:{model}" if incident_id is None else f"incident:{incident_id}"
    raise refuse_scope(vigil, who, target, {"action": action, "model": model}, message)


def refuse_scope(vigil: Vigil, who: Identity, target: str, what: dict[str, Any], message: str) -> HTTPException:
    """The 403 for a write outside the token's scope, audited first so the refusal is on record.
    An audit log that cannot be written does not turn it into a 500: the caller would read a
    server fault, not "outside your models", and retry; nothing was done, and the log says so."""
    detail = {**what, "token": who.name, "role": str(who.role),
              "models": list(who.scope.patterns) if who.scope else None, "why": message}
    try:
        vigil.store.audit(who.actor, "api.refused", target, detail)
    except Exception as e:  # whatever broke the store: the refusal stands, and is logged
        log.error("a refusal could not be audited (%s: %s): %s", type(e).__name__, e, message,
                  extra={"actor": who.actor, "target": target, "audit": "api.refused"})
    return HTTPException(403, message)


ViewerDep = Annotated[Identity, Depends(RoleCheck(Role.VIEWER))]
IngestDep = Annotated[Identity, Depends(RoleCheck(Role.INGEST))]
OperatorDep = Annotated[Identity, Depends(RoleCheck(Role.OPERATOR))]


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
