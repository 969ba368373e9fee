"""Vigil's HTTP API (FastAPI; the OpenAPI document at /openapi.json is the contract).

Reads are open; writes (rollback, samples, ack, silence) need `Authorization: Bearer
<api.token>`. Bad input gets a 4xx whose body names the field and what was expected;
an unexpected error is a 500 with a request id, never a stack trace.
"""
from __future__ import annotations

import hashlib
import json
import logging
import secrets
import threading
import time
import uuid
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Header, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, Field

from alerts.audit import verify_chain
from monitor.vigil import Vigil
from monitor.store.repository import IncidentRow

log = logging.getLogger("vigil.api")


# ----------------------------------------------------------------------------- bodies
class RollbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=3, max_length=2000, description="Why: recorded in the audit log")
    to_version: str | None = Field(None, pattern=r"^\d+$", description="Default: the version before the last deploy")
    dry_run: bool = False


class RollbackResponse(BaseModel):
    model: str
    status: Literal["done", "dry_run", "noop", "failed"]
    from_version: str | None
    to_version: str
    detail: str
    actor: str
    at: float


class SilenceRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    duration_s: float = Field(gt=0, le=30 * 86400, description="How long to keep the incident quiet")
    reason: str = Field(min_length=3, max_length=2000)


class SamplesRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str
    records: list[dict[str, Any]] = Field(min_length=1, max_length=100_000)


class IncidentOut(BaseModel):
    id: int
    model: str
    status: str
    severity: str
    title: str
    onset: float
    opened_at: float
    updated_at: float
    resolved_at: float | None
    cold_start: bool
    acknowledged_by: str | None
    silenced_until: float | None
    reasons: list[Any]
    findings: list[dict[str, Any]]
    causes: list[dict[str, Any]]
    actions: list[dict[str, Any]] = []
    drift_report: str | None = None


def _incident_out(row: IncidentRow, actions: list[dict[str, Any]] | None = None, report: bool = False) -> IncidentOut:
    return IncidentOut(id=row.id, model=row.model, status=row.status, severity=row.severity, title=row.title,
                       onset=row.onset, opened_at=row.opened_at, updated_at=row.updated_at,
                       resolved_at=row.resolved_at, cold_start=row.cold_start, acknowledged_by=row.acknowledged_by,
                       silenced_until=row.silenced_until, reasons=row.reasons, findings=row.findings,
                       causes=row.causes, actions=actions or [],
                       drift_report=f"/v1/incidents/{row.id}/drift-report" if report else None)


def _field_errors(exc: RequestValidationError) -> list[dict[str, str]]:
    out = []
    for e in exc.errors():
        loc = ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body"
        msg = str(e.get("msg", "invalid")).removeprefix("Value error, ")
        if e.get("type") == "missing":
            msg = "required field is missing"
        elif e.get("type") == "extra_forbidden":
            msg = "unknown field"
        out.append({"field": loc, "message": msg})
    return out


def create_app(vigil: Vigil) -> FastAPI:
    app = FastAPI(title="Vigil", version="0.1.0",
                  description="AIOps monitoring and root cause for ML models in production")
    rollback_locks: dict[str, threading.Lock] = {}
    locks_guard = threading.Lock()

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        fields = _field_errors(exc)
        summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
        return JSONResponse(status_code=422, content={"error": f"invalid request: {summary}", "fields": fields})

    @app.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse(status_code=exc.status_code, content={"error": exc.detail}, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        rid = uuid.uuid4().hex[:12]
        log.exception("unhandled error", extra={"request_id": rid, "path": request.url.path})
        return JSONResponse(status_code=500, content={"error": "internal error", "request_id": rid})

    def require_token(authorization: Annotated[str | None, Header()] = None) -> str:
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

    def model_or_404(name: str) -> Any:
        try:
            return vigil.config.model(name)
        except KeyError:
            known = ", ".join(m.name for m in vigil.config.models)
            raise HTTPException(404, f"unknown model {name!r}; monitored models: {known}") from None

    def incident_or_404(incident_id: int) -> IncidentRow:
        row = vigil.store.incident(incident_id)
        if row is None:
            raise HTTPException(404, f"incident {incident_id} not found")
        return row

    # ------------------------------------------------------------------- health
    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    def readyz() -> JSONResponse:
        try:
            vigil.store.outbox_counts()
            store_ok = True
        except Exception as e:  # noqa: BLE001
            store_ok, store_err = False, str(e)
        sources = {name: {"status": str(s.status), "url": s.url, "detail": s.detail, "checked_at": s.checked_at}
                   for name, s in vigil.readiness().items()}
        down = [n for n, s in sources.items() if s["status"] == "down"]
        body = {"status": "ready" if store_ok and not down else ("degraded" if store_ok else "not ready"),
                "store": "up" if store_ok else f"down: {store_err}", "sources": sources,
                "outbox": vigil.store.outbox_counts() if store_ok else {}}
        # A down source makes Vigil degraded (and says so) but the API, rollback included,
        # must stay reachable: only a dead store makes it not ready.
        return JSONResponse(status_code=200 if store_ok else 503, content=body)

    @app.get("/metrics", tags=["health"])
    def metrics() -> Response:
        return Response(generate_latest(vigil.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    # ------------------------------------------------------------------- incidents
    @app.get("/v1/incidents", response_model=list[IncidentOut], tags=["incidents"])
    def list_incidents(model: str | None = None, status: Literal["open", "resolved"] | None = None,
                       limit: Annotated[int, Query(ge=1, le=500)] = 50,
                       offset: Annotated[int, Query(ge=0)] = 0) -> list[IncidentOut]:
        if model is not None:
            model_or_404(model)
        return [_incident_out(r) for r in vigil.store.incidents(model=model, status=status, limit=limit,
                                                                 offset=offset)]

    @app.get("/v1/incidents/{incident_id}", response_model=IncidentOut, tags=["incidents"])
    def get_incident(incident_id: Annotated[int, Path(ge=1)]) -> IncidentOut:
        row = incident_or_404(incident_id)
        actions = [a.to_dict() for a in vigil.store.actions(incident_id=row.id)]
        return _incident_out(row, actions, vigil.store.drift_report(row.id) is not None)

    @app.get("/v1/incidents/{incident_id}/drift-report", response_class=HTMLResponse, tags=["incidents"])
    def drift_report(incident_id: Annotated[int, Path(ge=1)]) -> HTMLResponse:
        incident_or_404(incident_id)
        html = vigil.store.drift_report(incident_id)
        if html is None:
            raise HTTPException(404, f"incident {incident_id} has no drift report (no drift findings)")
        return HTMLResponse(html)

    @app.post("/v1/incidents/{incident_id}/ack", response_model=IncidentOut, tags=["incidents"])
    def ack(incident_id: Annotated[int, Path(ge=1)], actor: str = Depends(require_token)) -> IncidentOut:
        return _ack(incident_id, actor)

    def _ack(incident_id: int, actor: str) -> IncidentOut:

        incident_or_404(incident_id)
        return _incident_out(vigil.operator.acknowledge(incident_id, actor, time.time()))

    @app.post("/v1/incidents/{incident_id}/silence", response_model=IncidentOut, tags=["incidents"])
    def silence(incident_id: Annotated[int, Path(ge=1)], body: SilenceRequest,
                actor: str = Depends(require_token)) -> IncidentOut:

        incident_or_404(incident_id)
        return _incident_out(vigil.operator.silence(incident_id, actor, body.duration_s, body.reason, time.time()))

    # ------------------------------------------------------------------- rollback
    @app.post("/v1/models/{name}/rollback", response_model=RollbackResponse, tags=["actions"],
              responses={401: {}, 403: {}, 404: {}, 409: {}, 422: {}})
    def rollback(name: str, body: RollbackRequest, response: Response,
                 actor: str = Depends(require_token),
                 idempotency_key: Annotated[str | None, Header(max_length=200)] = None) -> Any:

        m = model_or_404(name)
        request_hash = hashlib.sha256(json.dumps(body.model_dump(), sort_keys=True).encode()).hexdigest()
        scope = f"rollback:{name}"
        with locks_guard:
            lock = rollback_locks.setdefault(scope, threading.Lock())
        with lock:  # one rollback per model at a time; a retried key waits and gets the same answer
            if idempotency_key:
                prior = vigil.store.idempotent_response(scope, idempotency_key)
                if prior is not None:
                    if prior.request_hash != request_hash:
                        raise HTTPException(422, "Idempotency-Key was already used with a different request body")
                    response.headers["Idempotent-Replayed"] = "true"
                    response.status_code = prior.status_code
                    return prior.response
            target = body.to_version or vigil.store.rollback_target(m.name)
            if not target:
                raise HTTPException(409, "no previous version is recorded for this model: give to_version")
            missing = _missing_version(m, target)
            if missing and body.to_version:
                return JSONResponse(status_code=422, content={
                    "error": f"invalid request: to_version: {missing}",
                    "fields": [{"field": "to_version", "message": missing}]})
            if missing:
                raise HTTPException(409, f"the version before the last deploy is gone: {missing}; give to_version")
            now = time.time()
            outcome = vigil.operator.rollback(m, to_version=target, dry_run=body.dry_run, reason=body.reason,
                                     actor=actor, incident_id=_open_incident_id(m.name), now=now)
            result = RollbackResponse(model=m.name, status=outcome.status, from_version=outcome.from_version,
                                      to_version=outcome.to_version, detail=outcome.detail, actor=actor, at=now)
            status_code = 502 if outcome.status == "failed" else 200
            # A failed move changed nothing (or a retry finds the alias moved and records a
            # no-op), so only outcomes are kept: a client retrying after a registry outage
            # with the same key gets a real second attempt, not the stored 502.
            if idempotency_key and status_code == 200:
                vigil.store.save_idempotent_response(scope, idempotency_key, request_hash, status_code,
                                                     result.model_dump(), now)
        try:
            vigil.deliver()  # announce it now rather than at the sender's next round
        except Exception:  # noqa: BLE001 - the rollback happened; its messages wait in the outbox
            log.exception("outbox delivery after rollback failed", extra={"model": m.name})
        if status_code != 200:
            return JSONResponse(status_code=status_code, content={"error": outcome.detail, **result.model_dump()})
        return result

    def _missing_version(m: Any, version: str) -> str | None:
        """Why `version` cannot be rolled back to, if the registry says it does not exist.
        A registry that cannot answer is left to the rollback, which reports it (502)."""
        from monitor.sources.registry import ModelNotFound

        try:
            vigil.registry.get_version(m.registry, version)
        except ModelNotFound as e:
            return str(e)
        except Exception:  # noqa: BLE001 - unreachable registry: not the caller's mistake
            return None
        return None

    def _open_incident_id(model: str) -> int | None:
        rows = vigil.store.incidents(model=model, status="open", limit=1)
        return rows[0].id if rows else None

    # ------------------------------------------------------------------- audit
    @app.get("/v1/audit", tags=["audit"])
    def audit(since_seq: Annotated[int, Query(ge=0)] = 0,
              limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
        entries = vigil.store.audit_entries(since_seq=since_seq, limit=limit)
        verdict = verify_chain(vigil.store.audit_entries())
        return {"entries": [e.__dict__ for e in entries],
                "chain": {"ok": verdict.ok, "checked": verdict.checked, "first_bad_seq": verdict.first_bad_seq,
                          "reason": verdict.reason}}

    # ------------------------------------------------------------------- samples
    @app.post("/v1/samples", status_code=202, tags=["samples"])
    def samples(body: SamplesRequest, _: str = Depends(require_token)) -> dict[str, Any]:
        from monitor.api.ingest import InvalidRecords, validate_records

        m = model_or_404(body.model)
        try:
            rows = validate_records(m, body.records, m.samples)
        except InvalidRecords as e:
            return JSONResponse(status_code=422, content={"error": str(e), "fields": e.fields})
        n = vigil.store.add_samples(m.name, rows)
        vigil.metrics.samples.labels(m.name).inc(n)
        return {"accepted": n, "model": m.name}

    # ------------------------------------------------------------------- slack
    @app.post("/v1/slack/actions", tags=["slack"], include_in_schema=True)
    async def slack_actions(request: Request) -> JSONResponse:
        from alerts.slack_actions import InvalidSlackSignature, parse_interaction

        secret = vigil.config.slack.signing_secret
        if not secret:
            raise HTTPException(503, "Slack actions are disabled: set slack.signing_secret")
        body = await request.body()
        try:
            action = parse_interaction(body, request.headers, secret, time.time())
        except InvalidSlackSignature as e:
            raise HTTPException(401, f"invalid Slack signature: {e}") from None
        except ValueError as e:
            raise HTTPException(400, str(e)) from None
        text = vigil.operator.slack_action(action, time.time())
        return JSONResponse({"response_type": "ephemeral", "text": text})

    @app.get("/", include_in_schema=False)
    def root() -> PlainTextResponse:
        return PlainTextResponse("Vigil API: see /docs\n")

    return app

