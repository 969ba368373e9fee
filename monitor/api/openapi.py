"""The OpenAPI document, made to say what the API really does.

FastAPI documents every validation failure as `HTTPValidationError` (`{detail: [...]}`),
but errors.py answers `{error, fields}`; and the middleware (token check, size and rate
limits) answers statuses no route declares. So the generated document is finished here,
once: every 4xx/5xx carries `ErrorBody`, every operation lists what the middleware may
answer, protected operations need the bearer scheme and open ones say they are open.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from monitor.api.auth import is_open
from monitor.api.responses import DESCRIPTIONS, ErrorBody

BEARER = "HTTPBearer"  # the scheme HTTPBearer (deps.py) declares, under its class name
ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}
EVERY_ROUTE = (413, 429)  # the limits middleware may answer these before any route runs
PROTECTED_ROUTE = (401, 403, 503)  # the token check (auth.py) and the role check (deps.py)
_FASTAPI_DEFAULTS = ("HTTPValidationError", "ValidationError")


def install_openapi(app: FastAPI) -> None:
    app.openapi = _cached(app)  # type: ignore[method-assign]  # FastAPI's documented way to replace it


def _cached(app: FastAPI) -> Callable[[], dict[str, Any]]:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(title=app.title, version=app.version, description=app.description,
                              routes=app.routes)
            app.openapi_schema = truthful(doc)
        return app.openapi_schema
    return openapi


def truthful(doc: dict[str, Any]) -> dict[str, Any]:
    """`doc` with the real error body, every status the middleware adds, and security."""
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for name in _FASTAPI_DEFAULTS:
        schemas.pop(name, None)
    error_body = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(error_body.pop("$defs", {}))
    schemas["ErrorBody"] = error_body
    components.setdefault("securitySchemes", {}).setdefault(
        BEARER, {"type": "http", "scheme": "bearer", "description": "an API token (README: Identities and roles)"})
    doc["security"] = [{BEARER: []}]
    for path, item in doc.get("paths", {}).items():
        for operation in item.values():
            _finish(operation, open_=is_open(path))
    return doc


def _finish(operation: dict[str, Any], *, open_: bool) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    # A body that is not the JSON (or form) it claims to be is a 400 before validation.
    parsed = (400,) if "requestBody" in operation else ()
    for code in EVERY_ROUTE + parsed + (() if open_ else PROTECTED_ROUTE):
        responses.setdefault(str(code), {"description": DESCRIPTIONS[code]})
    responses["429"].setdefault("headers", {"Retry-After": {
        "description": "seconds until this client may write again", "schema": {"type": "integer"}}})
    for status, response in responses.items():
        if status[0] in "45":
            _error_body(response, int(status))
    # Open to anyone (health, metrics), or signed by Slack instead of a token.
    operation["security"] = [] if open_ else [{BEARER: []}]


def _error_body(response: dict[str, Any], code: int) -> None:
    """FastAPI's default 422 body, or none at all, becomes ErrorBody; a body a route
    declared itself (readiness, a failed rollback) stays."""
    content = response.get("content", {}).get("application/json", {})
    ref = content.get("schema", {}).get("$ref", "")
    if not content or ref.rsplit("/", 1)[-1] in _FASTAPI_DEFAULTS:
        response["content"] = {"application/json": {"schema": ERROR_REF}}
    if not response.get("description") or response["description"] == "Validation Error":
        response["description"] = DESCRIPTIONS.get(code, "error")
