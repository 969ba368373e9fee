"""Silences: `POST /v1/silences` makes one (role operator), `GET /v1/silences` lists them
(role viewer), `DELETE /v1/silences/{id}` expires one (operator). Matchers use
Alertmanager's semantics; every change is audited under the token's name. A silenced
incident still opens and is recorded; it pages no one.

A token scoped to some models (`api.tokens[].models`) makes and expires only silences
whose matchers confine them to those models (monitor/model_scope.py); it lists them all."""
from __future__ import annotations

import time
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import URL

from alerts.matchers import Matcher
from alerts.silences import Silence, SilenceError, SilenceState
from monitor import silence_ops
from monitor.api.deps import AUTH_RESPONSES, OperatorDep, ViewerDep, VigilDep, refuse_scope
from monitor.api.errors import FieldError
from monitor.api.ingest import MAX_EPOCH_S
from monitor.api.limits import WRITE_LIMIT_RESPONSES
from monitor.api.pagination import OffsetQuery, Page, limit_query, next_by_offset
from monitor.api.responses import errors
from monitor.api.schemas import MAX_ID, NO_NUL
from monitor.identities import Identity
from monitor.vigil import Vigil

router = APIRouter(prefix="/v1/silences", tags=["silences"], responses={**AUTH_RESPONSES, **errors(422)})


class MatcherIn(BaseModel):
    """Alertmanager API v2's matcher (its camelCase names, so its clients and habits carry over)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=100, description="label: model, severity, kind, kinds, entity, cause_kind, cause, "
                                                  "source, or one of the model's labels")
    value: str = Field(max_length=1000)
    is_regex: bool = Field(False, alias="isRegex")
    is_equal: bool = Field(True, alias="isEqual")


class SilenceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    matchers: list[MatcherIn | Annotated[str, Field(max_length=1000)]] = Field(
        min_length=1, max_length=50, description='each `model="recommender"` (=, !=, =~, !~) or a matcher object')
    starts_at: float | str | None = Field(None, description="epoch seconds or RFC3339; default now")
    ends_at: float | str | None = Field(None, description="epoch seconds or RFC3339; or give duration")
    duration: float | str | None = Field(None, description="instead of ends_at: '2h', '30m' or seconds")
    created_by: str | None = Field(None, max_length=200, pattern=NO_NUL, description="default: the API token's name")
    comment: str = Field(min_length=1, max_length=2000, pattern=NO_NUL, description="why: a ticket, a maintenance")


class MatcherOut(BaseModel):
    name: str
    value: str
    is_regex: bool = Field(alias="isRegex")
    is_equal: bool = Field(alias="isEqual")
    text: str = Field(description='the matcher as written: model="recommender"')


class SilenceStatus(BaseModel):
    state: Literal["pending", "active", "expired"]


class SilenceOut(BaseModel):
    id: int
    matchers: list[MatcherOut]
    starts_at: float
    ends_at: float
    created_by: str
    comment: str
    status: SilenceStatus
    updated_at: float | None
    problem: str | None = Field(None, description="set when the silence may not mute as meant: a regex stored "
                                                  "by an older Vigil in Python's syntax, which RE2 refuses")

    @classmethod
    def of(cls, s: Silence, now: float) -> SilenceOut:
        return cls.model_validate(s.to_api(now))


@router.post("", status_code=201, response_model=SilenceOut, responses=WRITE_LIMIT_RESPONSES)
def create_silence(who: OperatorDep, vigil: VigilDep, body: SilenceIn) -> SilenceOut:
    now = time.time()
    ask = silence_ops.SilenceAsk(
        [m.model_dump(by_alias=True) if isinstance(m, MatcherIn) else m for m in body.matchers], body.comment,
        body.created_by or who.name, body.starts_at, body.ends_at, body.duration)
    try:
        _confined(vigil, who, silence_ops.parse_matchers(ask.matchers), "silences", "silence.create")
        made = silence_ops.create(vigil.store, ask, who.actor, now)
    except SilenceError as e:
        raise FieldError(e.field, e.reason) from None
    return SilenceOut.of(made, now)


def _confined(vigil: Vigil, who: Identity, matchers: tuple[Matcher, ...], target: str, action: str) -> None:
    """A scoped token's silence must mute its own models only: else 403, audited."""
    gap = who.scope.confinement_gap(matchers) if who.scope is not None else None
    if gap is not None:
        verb = action.removeprefix("silence.")
        message = f"token {who.name!r} may only {verb} silences confined to its models ({who.scope}): {gap}"
        raise refuse_scope(vigil, who, target, {"action": action, "matchers": [str(m) for m in matchers]}, message)


AtQuery = Annotated[float | None, Query(ge=0, le=MAX_EPOCH_S, allow_inf_nan=False,
                                        description="the time `state` is judged at: the `next` link sets it")]
MaxIdQuery = Annotated[int | None, Query(ge=1, le=MAX_ID, description="only silences made up to this id: the "
                                                                      "`next` link sets it")]


@router.get("", response_model=Page[SilenceOut])
def list_silences(_: ViewerDep, vigil: VigilDep, request: Request,
                  state: Literal["pending", "active", "expired"] | None = None,
                  limit: Annotated[int, limit_query(500)] = 50, offset: OffsetQuery = 0,
                  at: AtQuery = None, max_id: MaxIdQuery = None) -> Page[SilenceOut]:
    """Newest first, `limit` a page; follow `next` for the rest."""
    now = time.time()
    as_of = now if at is None else at
    items, total = silence_ops.listing(vigil.store, as_of, SilenceState(state) if state else None, limit, offset,
                                       max_id)
    # `next` pins the listing where it began (states judged at its time, nothing made after its
    # newest): by offset alone, a silence made meanwhile pushed the list down (one shown
    # twice) and one expired meanwhile under state=active pulled it up (one never shown).
    if max_id is None and offset == 0 and items:
        max_id = items[0].id
    nxt = next_by_offset(request, offset=offset, limit=limit, total=total)
    if nxt is not None:
        nxt = str(URL(nxt).include_query_params(at=as_of, **({"max_id": max_id} if max_id else {})))
    return Page[SilenceOut](items=[SilenceOut.of(s, now) for s in items], total=total, next=nxt)


@router.delete("/{silence_id}", response_model=SilenceOut, responses={**WRITE_LIMIT_RESPONSES, **errors(404)})
def expire_silence(who: OperatorDep, vigil: VigilDep,
                   silence_id: Annotated[int, Path(ge=1, le=MAX_ID)]) -> SilenceOut:
    now = time.time()
    if who.scope is not None and (found := silence_ops.get(vigil.store, silence_id)) is not None:
        _confined(vigil, who, found.matchers, f"silence:{silence_id}", "silence.expire")  # matchers never change
    got = silence_ops.expire(vigil.store, silence_id, who.actor, now)
    if got is None:
        raise HTTPException(404, f"silence {silence_id} not found")
    return SilenceOut.of(got, now)
