"""The error statuses a route may answer, for its OpenAPI entry, all with the one body
the API really sends (`ErrorBody`, errors.py): a client generated from /openapi.json then
handles `{error, fields}`, not FastAPI's default `{detail: [...]}`.

`errors(404, 422)` in a route's `responses=`; what every route may answer (413 and 429
from the limits middleware, 401/403/503 from the token check) is added to the document
as a whole by openapi.py, since the middleware answers them before any route runs.
"""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

Responses = dict[int | str, dict[str, Any]]


class FieldProblem(BaseModel):
    field: str = Field(description="where in the request, e.g. `records[3].user_age` or `limit`")
    message: str


class ErrorBody(BaseModel):
    """Every 4xx and 5xx answer."""

    error: str = Field(description="what went wrong and what to do about it, for a person")
    fields: list[FieldProblem] | None = Field(None, description="the fields to blame, when fields are to blame")
    request_id: str | None = Field(None, description="a 500's id, to find it in the server log")


DESCRIPTIONS: dict[int, str] = {
    400: "the request is not one this endpoint understands",
    401: "no bearer token, or one that matches no configured API token",
    403: "the token's role may not do this (the body names the role needed and the one held)",
    404: "the model or incident named does not exist (the body lists what does)",
    409: "the request conflicts with the current state (the body says which and what to give)",
    413: "the body is larger than the configured limit (refused while streaming)",
    422: "a field is invalid: `fields` names each one and what was expected",
    429: "too many requests from this client: slow down and try again later",
    502: "a system Vigil acts on (the registry, a serving layer) failed: nothing was changed",
    503: "not available now: no API token is configured, or the configured ones cannot be loaded",
}


def errors(*codes: int) -> Responses:
    """`responses=` entries for these statuses, each with the error body and its usual meaning."""
    return {code: {"model": ErrorBody, "description": DESCRIPTIONS[code]} for code in codes}
