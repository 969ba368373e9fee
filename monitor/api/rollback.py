"""`POST /v1/models/{name}/rollback`: move the serving alias back, guarded and audited.

Role operator; `force` (moving to a version an incident blames) needs admin. With an
`Idempotency-Key`, a request retried within 24 h gets the first answer back instead of a
second rollback; a different body under the same key is refused.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.orm import Session

from alerts.rollback import TargetChoice
from monitor.api.deps import AUTH_RESPONSES, ModelDep, OperatorDep, VigilDep, in_scope, refuse_role
from monitor.api.errors import FieldError
from monitor.api.idempotency import DIFFERENT_BODY, IDEMPOTENCY_TTL_S, REPLAYED, IdempotencyKey, live
from monitor.api.responses import errors
from monitor.api.schemas import (
    RollbackCancelRequest,
    RollbackCancelResponse,
    RollbackFailed,
    RollbackRequest,
    RollbackResponse,
    rollback_watch,
)
from monitor.config import ModelConfig
from monitor.cycle.rollback_ask import RollbackAsk, missing_version
from monitor.cycle.rollback_cancel import CANCELLED, DONE, UNREAD, cancel
from monitor.identities import Role, satisfies
from monitor.redact import redact
from monitor.store import idempotency
from monitor.store.intents import RollbackIntentRow
from monitor.vigil import Vigil

log = logging.getLogger("vigil.api")

router = APIRouter(tags=["actions"], responses=AUTH_RESPONSES)
INTENT = "_intent_id"  # kept with a pending or failed answer (never sent): the rollback a retry follows


class KeyedLocks:
    """One lock per key, made on first use."""

    def __init__(self) -> None:
        self._locks: dict[str, threading.Lock] = {}
        self._users: dict[str, int] = {}
        self._guard = threading.Lock()

    def __call__(self, key: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    @contextlib.contextmanager
    def hold(self, key: str) -> Iterator[None]:
        """Hold `key`'s lock; its entry goes once nobody holds or waits for it (a key per
        request, Idempotency-Key, would otherwise keep one lock per key ever used)."""
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
            self._users[key] = self._users.get(key, 0) + 1
        try:
            with lock:
                yield
        finally:
            with self._guard:
                self._users[key] -= 1
                if not self._users[key]:
                    del self._users[key]
                    self._locks.pop(key, None)


def get_rollback_locks(request: Request) -> KeyedLocks:
    locks: KeyedLocks = request.app.state.rollback_locks  # one set per app, made by create_app
    return locks


RollbackLocksDep = Annotated[KeyedLocks, Depends(get_rollback_locks)]


@router.post("/v1/models/{name}/rollback", response_model=RollbackResponse,
             responses={202: {"model": RollbackResponse,
                              "description": "recorded; a layer is unreachable and the rollback retries"},
                        **errors(404, 409, 422),
                        502: {"model": RollbackFailed, "description": "a layer could not be moved"}})
def rollback(who: OperatorDep, vigil: VigilDep, m: ModelDep, body: RollbackRequest, response: Response,
             locks: RollbackLocksDep,
             idempotency_key: IdempotencyKey = None) -> Any:
    in_scope(vigil, who, m.name, "rollback")
    if body.force and not satisfies(who.role, Role.ADMIN):
        raise refuse_role(who, Role.ADMIN, "force")
    actor = who.actor
    request_hash = hashlib.sha256(json.dumps(body.model_dump(), sort_keys=True).encode()).hexdigest()
    scope = f"rollback:{m.name}"
    # Only a retry of the same key waits here (and gets the first answer). Another request
    # goes on: the intents allow one rollback per model in flight and answer it 202 pending
    # at once, on every replica; a lock per model held for a whole rollback made it hang.
    with locks.hold(f"{scope}:{idempotency_key}") if idempotency_key else contextlib.nullcontext():
        only_from, replacing = None, False
        if idempotency_key:
            prior = live(vigil.store.idempotent_response(scope, idempotency_key), time.time())
            if prior is not None:
                if prior.request_hash != request_hash:
                    raise HTTPException(422, DIFFERENT_BODY)
                if INTENT not in prior.response:
                    response.headers[REPLAYED] = "true"
                    response.status_code = prior.status_code
                    return prior.response
                replay, only_from = _follow_intent(vigil, prior.response)  # where that rollback is now
                if replay is not None:
                    return replay
                replacing = True  # it failed: the same rollback again, only from what it moved away from
        now = time.time()
        target, choice = _target(vigil, m, body, now)
        replace_before = now + 1 if replacing else now - IDEMPOTENCY_TTL_S
        keep = _keep_with_intent(scope, idempotency_key, request_hash, actor, now, replace_before) \
            if idempotency_key else None
        incident_id = vigil.operator.open_incident_id(m.name)
        outcome = vigil.operator.rollback(RollbackAsk(m, target, body.reason, actor, incident_id, now,
                                                      dry_run=body.dry_run, forced=choice.forced, only_from=only_from,
                                                      on_recorded=keep, stay=choice.stay))
        if outcome.status == "refused":  # the retry of a failed one: the alias has moved since
            raise HTTPException(409, redact(outcome.detail))
        result = RollbackResponse(model=m.name, status=outcome.status, from_version=outcome.from_version,
                                  to_version=outcome.to_version,
                                  detail=redact(choice.said(outcome.detail, outcome.status)), actor=actor,
                                  at=now, incident_id=incident_id, watch=rollback_watch(m.name, incident_id))
        # This request's own rollback is kept with its intent even when pending or failed:
        # a retry after it finished (pending) started a second rollback, and one after a
        # failure rolled back whatever was deployed in between. A retry of a failed one
        # now moves only what still serves the version it moved away from.
        if idempotency_key and (outcome.own or outcome.status not in ("failed", "pending")):
            code = {"pending": 202, "failed": 502}.get(outcome.status, 200)
            intent = {INTENT: outcome.intent_id} if outcome.own and code != 200 else {}
            vigil.store.save_idempotent_response(scope, idempotency_key, request_hash, code,
                                                 {**result.model_dump(), **intent}, now,
                                                 replace_before=now + 1 if outcome.own else replace_before)
    _announce(vigil, m.name)
    return _answer(result)


@router.post("/v1/models/{name}/rollback/cancel", response_model=RollbackCancelResponse,
             responses=errors(404, 409, 422, 502))
def rollback_cancel(who: OperatorDep, vigil: VigilDep, m: ModelDep, body: RollbackCancelRequest) -> Any:
    """Cancel the model's pending rollback if nothing of it moved (200 `cancelled`); one done
    already is `done` (200, nothing moved back); 409 when none is pending or it moved, in part or
    its alias (the lease holder's cycle finishes it: never driven here); 502 when the alias
    cannot be read (nothing cancelled)."""
    in_scope(vigil, who, m.name, "rollback cancel")
    now = time.time()
    got = cancel(vigil.rollbacks, m, who.actor, body.reason, now)
    if got.status not in (CANCELLED, DONE):
        raise HTTPException(502 if got.status == UNREAD else 409, redact(got.detail))
    _announce(vigil, m.name)
    return RollbackCancelResponse(model=m.name, status=got.status, intent_id=got.intent_id,
                                  from_version=got.from_version, to_version=got.to_version,
                                  detail=redact(got.detail), actor=who.actor, at=now, incident_id=got.incident_id,
                                  watch=rollback_watch(m.name, got.incident_id))


def _answer(result: RollbackResponse, headers: dict[str, str] | None = None) -> JSONResponse:
    """502 failed, 202 pending (recorded and retrying: a layer is unreachable, or another is in flight), else 200."""
    if result.status == "failed":
        return JSONResponse(status_code=502, content={"error": result.detail, **result.model_dump()}, headers=headers)
    return JSONResponse(status_code=202 if result.status == "pending" else 200, content=result.model_dump(),
                        headers=headers)


def _keep_with_intent(scope: str, key: str, request_hash: str, actor: str, now: float, replace_before: float
                      ) -> Callable[[Session, RollbackIntentRow], None]:
    """Store the key's answer, pointing at the intent, in the intent's own transaction: a
    crash (kill -9) after a layer moved and before the final answer is stored then leaves a
    retry following that rollback (reconciled at start-up), never starting a second one."""
    def keep(s: Session, intent: RollbackIntentRow) -> None:
        provisional = RollbackResponse(model=intent.model, status="pending", from_version=intent.from_version,
                                       to_version=intent.to_version, detail="in flight", actor=actor, at=now,
                                       incident_id=intent.incident_id,
                                       watch=rollback_watch(intent.model, intent.incident_id))
        idempotency.put_response(s, scope, key, request_hash, 202, {**provisional.model_dump(), INTENT: intent.id},
                                 now, replace_before=replace_before)
    return keep


def _follow_intent(vigil: Vigil, stored: dict[str, Any]) -> tuple[JSONResponse | None, str | None]:
    """A kept answer brought up to date from its intent: pending or done, that answer; failed,
    None and the version it moved away from (a retry may try the same rollback again)."""
    with vigil.store.tx() as s:
        intent = s.get(RollbackIntentRow, stored[INTENT])
        if intent is not None and intent.status == "failed":
            return None, intent.from_version
        now = {} if intent is None else {"status": intent.status, "from_version": intent.from_version,
                                         "to_version": intent.to_version, "detail": redact(intent.detail)}
    result = RollbackResponse.model_validate({k: v for k, v in {**stored, **now}.items() if k != INTENT})
    return _answer(result, {REPLAYED: "true"}), None


def _target(vigil: Vigil, m: ModelConfig, body: RollbackRequest, now: float) -> tuple[str, TargetChoice]:
    """The version to roll back to, and the choice (forced, or `stay`): the one asked for (a
    blamed one only with force, or while it serves), else the last version known good."""
    choice = vigil.operator.choose_target(m, now, asked=body.to_version, force=body.force, force_reason=body.reason)
    if choice.version is None:
        raise HTTPException(409, choice.reason + ("" if body.to_version else "; give to_version"))
    target = choice.version
    missing = missing_version(vigil.registry, m.registry, target)
    if missing and body.to_version:
        raise FieldError("to_version", missing)
    if missing:
        raise HTTPException(409, f"the default rollback target is gone: {missing}; give to_version")
    return target, choice


def _announce(vigil: Vigil, model: str) -> None:
    """Send the rollback's messages now rather than at the sender's next round."""
    try:
        vigil.deliver()
    except Exception:  # the rollback happened; its messages wait in the outbox for the next round
        log.exception("outbox delivery after rollback failed", extra={"model": model})
