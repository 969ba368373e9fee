"""One envelope for every list the API returns: `{"items": [...], "total": N, "next": url}`.

`total` counts everything that matches the filters (not just this page); `next` is the
URL of the following page, with the same filters, or null on the last page, so a
client pages by following `next` until it is null. Lists by offset take `limit` and
`offset`; lists by cursor (the audit log, `since_seq`; incidents, `before_id`) put the
cursor in `next`, so a row added or changed between two pages neither repeats nor hides one. Bad
values are a 422 naming the parameter (FastAPI's validation, answered by errors.py).
"""
from __future__ import annotations

from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query, Request
from pydantic import BaseModel, Field

from monitor.api.schemas import MAX_ID

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """A page of a list."""

    items: list[T]
    total: int = Field(ge=0, description="how many items match, over all pages")
    next: str | None = Field(description="the URL of the next page (same filters), or null on the last page")


def limit_query(maximum: int) -> Any:
    """`limit`'s Query: 1 to `maximum`, a 422 naming `limit` otherwise."""
    return Query(ge=1, le=maximum, description=f"items per page, 1 to {maximum}")


OffsetQuery = Annotated[int, Query(ge=0, le=MAX_ID, description="items to skip: the `next` link sets it")]


def next_by_offset(request: Request, *, offset: int, limit: int, total: int) -> str | None:
    """The next page's URL, or None when this page reaches the end."""
    if offset + limit >= total:
        return None
    return str(request.url.include_query_params(offset=offset + limit, limit=limit))


def next_by_cursor(request: Request, *, cursor_param: str, last: int | None, more: bool) -> str | None:
    """The next page's URL from the last item's cursor, or None when nothing follows."""
    if not more or last is None:
        return None
    # The cursor says where the next page starts: an offset beside it would skip that many again.
    return str(request.url.remove_query_params("offset").include_query_params(**{cursor_param: last}))
