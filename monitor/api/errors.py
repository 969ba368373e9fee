"""Error bodies (documented as responses.ErrorBody): every 4xx is `{"error": ...}` and, when a field is to blame,
`"fields": [{"field", "message"}]`, so a client can fix the request without reading logs.
An unexpected error is a 500 with a request id to find it in the log, never a stack trace.
Every body passes monitor.redact: an error may quote a URL with its password.
"""
from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from monitor.api.ingest import InvalidRecords
from monitor.api.schemas import NO_NUL
from monitor.redact import redact_obj

log = logging.getLogger("vigil.api")

FieldErrors = list[dict[str, str]]


class FieldError(Exception):
    """A field that passed the schema but not the world (say, a version the registry lacks):
    answered like a schema error, so the client handles one shape."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def field_errors(exc: RequestValidationError) -> FieldErrors:
    out = []
    for e in exc.errors():
        loc = ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body"
        msg = str(e.get("msg", "invalid")).removeprefix("Value error, ")
        if e.get("type") == "json_invalid":  # loc is (body, offset): say so, not "field 14"
            loc = "body"
            msg = f"invalid JSON at character {e.get('loc', ('', '?'))[-1]}: {e.get('ctx', {}).get('error', msg)}"
        elif e.get("type") == "missing":
            msg = "required field is missing"
        elif e.get("type") == "extra_forbidden":
            msg = "unknown field"
        elif e.get("type") == "string_pattern_mismatch" and e.get("ctx", {}).get("pattern") == NO_NUL:
            msg = "must not contain NUL characters (\\u0000)"
        out.append({"field": loc, "message": msg})
    return out


def error_response(status_code: int, content: dict[str, Any], headers: Mapping[str, str] | None = None
                   ) -> JSONResponse:
    """An `{error, ...}` body with every credential it quotes redacted."""
    return JSONResponse(status_code=status_code, content=redact_obj(content), headers=headers)


def invalid_request(fields: FieldErrors) -> JSONResponse:
    summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
    return error_response(422, {"error": f"invalid request: {summary}", "fields": fields})


# What pydantic says of a body it got as raw bytes: FastAPI parses JSON only when the
# Content-Type says JSON (curl -d sends application/x-www-form-urlencoded).
_NOT_AN_OBJECT = frozenset({"model_attributes_type", "model_type", "dict_type"})


def _is_json(content_type: str | None) -> bool:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
    fields = field_errors(exc)
    content_type = request.headers.get("content-type")
    if not _is_json(content_type) and any(tuple(e.get("loc", ())) == ("body",) and e.get("type") in _NOT_AN_OBJECT
                                          for e in exc.errors()):
        # The body may be a fine object: say what is wrong, not "Input should be a valid dictionary".
        fields = [{"field": "body", "message": "expected a JSON object sent with Content-Type: application/json, "
                                               f"got Content-Type: {content_type or 'none'}"}]
    return invalid_request(fields)


async def _field(_: Request, exc: FieldError) -> JSONResponse:
    return invalid_request([{"field": exc.field, "message": exc.message}])


async def _invalid_records(_: Request, exc: InvalidRecords) -> JSONResponse:
    # ingest words its own summary ("n invalid field(s), nothing stored: ...").
    return error_response(422, {"error": str(exc), "fields": exc.fields})


# FastAPI's words for a body its JSON parser raised on (not a JSONDecodeError: that is a 422).
_UNPARSED = "There was an error parsing the body"


def _why_unparsed(cause: BaseException | None) -> str:
    """What the parser refused, in the client's terms (it said only "an error")."""
    if isinstance(cause, RecursionError):
        return "JSON nested too deeply (arrays or objects within each other)"
    if isinstance(cause, UnicodeError):
        return "not UTF-8 text"
    if isinstance(cause, ValueError) and "digits" in str(cause):  # sys.get_int_max_str_digits()
        return "a number of more than 4300 digits"
    return "not parsable"


def _routing_error(request: Request, exc: HTTPException) -> Any:
    """Starlette's bare "Not Found" / "Method Not Allowed" (no route matched) in words a
    curl user can act on: which request missed and where the endpoints are; a route's own
    404 ("unknown model ...") is left as it is."""
    method, path = request.method, request.url.path
    if exc.status_code == 404 and exc.detail == "Not Found":
        return f"no endpoint {method} {path}; the endpoints are listed at /docs and /openapi.json"
    if exc.status_code == 405 and exc.detail == "Method Not Allowed":
        return f"{method} is not allowed on {path}; it takes {(exc.headers or {}).get('Allow', 'other methods')}"
    return exc.detail


async def _http(request: Request, exc: HTTPException) -> JSONResponse:
    # Starlette's own (an unknown path, a method the path lacks) included: FastAPI's
    # HTTPException derives from it, and every client then sees one shape.
    if exc.status_code == 400 and exc.detail == _UNPARSED:
        why = _why_unparsed(exc.__cause__)
        return error_response(400, {"error": f"the body could not be parsed: {why}; expected a JSON object",
                                    "fields": [{"field": "body", "message": why}]}, exc.headers)
    return error_response(exc.status_code, {"error": _routing_error(request, exc)}, exc.headers)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    rid = uuid.uuid4().hex[:12]
    log.exception("unhandled error", extra={"request_id": rid, "path": request.url.path})
    return JSONResponse(status_code=500, content={"error": "internal error", "request_id": rid})


def install_error_handlers(app: FastAPI) -> None:
    # The decorator form keeps each handler's own exception type (add_exception_handler
    # would want them all to take a bare Exception).
    app.exception_handler(RequestValidationError)(_validation)
    app.exception_handler(FieldError)(_field)
    app.exception_handler(InvalidRecords)(_invalid_records)
    # Starlette's class, not FastAPI's subclass: what the framework raises itself (a body
    # it cannot parse, an unknown route) gets the same `{error}` body as ours.
    app.exception_handler(HTTPException)(_http)
    app.exception_handler(Exception)(_unexpected)
