"""Unknown query parameters are refused, as unknown body fields are (schemas.py): a
misspelt `?stauts=open` answered with every incident looks like an answer and is not.
The OpenAPI document says so (`additionalProperties: false` is how schemathesis reads a
closed parameter list), and this makes it true.
"""
from __future__ import annotations

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute


def _query_names(dependant: Dependant) -> set[str]:
    names = {f.alias for f in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


def refuse_unknown_query(request: Request) -> None:
    """A dependency of the whole app: 422 naming each query parameter the route does not take."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or not request.query_params:
        return
    unknown = sorted(set(request.query_params) - _query_names(route.dependant))
    if unknown:
        # Answered by errors.py like any other invalid field.
        raise RequestValidationError([{"loc": ("query", name), "msg": "unknown query parameter",
                                       "type": "unknown_query"} for name in unknown])
