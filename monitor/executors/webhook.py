"""`webhook`: a signed HTTP call for any other serving layer, then a verification call.

The request (POST `url`, JSON):

    {"model", "registry_name", "from_version", "to_version", "incident_id",
     "idempotency_key", "requested_at"}   (requested_at: RFC 3339 UTC)

with headers `Idempotency-Key: <the intent's key>`, `X-Vigil-Timestamp: <Unix seconds>` and
`X-Vigil-Signature: v1=<hex HMAC-SHA256(secret, f"{timestamp}.{body}")>` over the exact
body bytes. A receiver checks the signature and that the timestamp is recent, and acts at
most once per Idempotency-Key (a replay gets the first answer): Vigil may deliver a request
more than once (retries, a restart before the outcome was recorded). The body is the same
on every delivery of one key when the caller passes the intent's `requested_at`. The body
carries `from_version` so a receiver can refuse (e.g. 409) when it no longer serves it:
compare-and-set on its side, as the Kubernetes executors do with `resourceVersion`.

Retries (bounded by `max_attempts`, waits doubling from `backoff_s`, each at most
`max_wait_s`, and by the step's deadline: the rollback resumes next cycle rather than
hold the model's cycle for minutes): connection errors and timeouts, 408, 425, 429 and
503 (honouring `Retry-After`), other 5xx. Never another 4xx: the receiver said no, and
saying it again will not help. `timeout_s` bounds each whole answer, not each read of it
(an answer still arriving then is a timeout, retried).

Verification: GET `verify_url` (signed the same way over an empty body) answers
`{"version": "..."}`, the version served now. The secret comes from `secret_env` or
`secret_file`, is read on each call (so a rotated secret file is picked up) and never logged.
"""
from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, stop_any

from alerts.receivers.http import RETRYABLE_4XX, retry_after_s, sign, whole_answer
from monitor.executors.base import (
    STEP_DEADLINE,
    ExecutorError,
    PastDeadline,
    RollbackStep,
    Verification,
    before_write,
    request_timeout,
)
from monitor.executors.config import WebhookExecutorConfig

log = logging.getLogger("vigil.executors.webhook")


class _Transient(Exception):
    """One attempt failed in a way the next may not: retried, then reported."""

    def __init__(self, detail: str, retry_after: float | None = None) -> None:
        self.detail, self.retry_after = detail, retry_after
        super().__init__(detail)


class WebhookExecutor:
    name = "webhook"

    def __init__(self, cfg: WebhookExecutorConfig, *, base_dir: str | Path = ".",
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.cfg, self.base_dir, self.clock, self.sleep = cfg, Path(base_dir), clock, sleep
        self.http = httpx.Client(timeout=cfg.timeout_s, transport=transport)

    def close(self) -> None:
        self.http.close()

    def preflight(self) -> None:
        """The secret can be read (ExecutorError, reason "config", if not): checked before a
        rollback moves the alias, which a webhook that cannot sign would leave half done."""
        self._secret()

    # ------------------------------------------------------------------ contract
    def current(self, step: RollbackStep) -> str | None:
        resp = self._send("GET", self.cfg.verify_url, b"", {})
        try:
            version = resp.json().get("version")
        except (ValueError, AttributeError):
            raise ExecutorError(False, f"verify URL {self.cfg.verify_url} answered HTTP {resp.status_code} "
                                       f"without a JSON object {{\"version\": ...}}", reason="rejected") from None
        return None if version is None else str(version)

    def apply(self, step: RollbackStep) -> None:
        body = self.body(step)
        resp = self._send("POST", self.cfg.url, body, {"Idempotency-Key": step.key})
        log.info("rollback webhook accepted", extra={"model": step.model, "to_version": step.to_version,
                                                      "status": resp.status_code, "url": self.cfg.url})

    def verify(self, step: RollbackStep) -> Verification:
        serving = self.current(step)
        where = f"{self.cfg.verify_url} reports v{serving}"
        if serving == step.to_version:
            return Verification(True, serving, where)
        return Verification(False, serving, f"{where}, expected v{step.to_version}")

    # ------------------------------------------------------------------ request
    def body(self, step: RollbackStep) -> bytes:
        at = step.requested_at if step.requested_at is not None else self.clock()
        doc: dict[str, Any] = {
            "model": step.model, "registry_name": step.registry_name, "from_version": step.from_version,
            "to_version": step.to_version, "incident_id": step.incident_id, "idempotency_key": step.key,
            "requested_at": datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z"),
        }
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()

    def _send(self, method: str, url: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
        secret, deadline = self._secret(), STEP_DEADLINE.get()  # the running step's (Guarded sets it)
        retrying = Retrying(stop=stop_any(stop_after_attempt(self.cfg.max_attempts), PastDeadline(deadline)),
                            wait=self._wait, sleep=self.sleep, retry=retry_if_exception_type(_Transient), reraise=True)
        try:
            return retrying(self._attempt, method, url, body, {**headers, "Content-Type": "application/json"}, secret,
                            deadline)
        except _Transient as e:
            tried = retrying.statistics.get("attempt_number", self.cfg.max_attempts)
            raise ExecutorError(True, f"{method} {url} gave up after {tried} attempt(s): {e.detail}",
                                reason="unavailable") from e

    def _attempt(self, method: str, url: str, body: bytes, headers: dict[str, str], secret: bytes,
                 deadline: float | None) -> httpx.Response:
        if method == "POST":  # each attempt acts: the lease and the rollback still pending, checked first
            before_write()
        timestamp = str(int(self.clock()))
        signed = {**headers, "X-Vigil-Timestamp": timestamp, "X-Vigil-Signature": sign(secret, timestamp, body)}
        timeout = request_timeout(self.cfg.timeout_s, deadline)  # each request ends by the deadline too
        try:
            resp = self._request(method, url, body, signed, timeout)
        except httpx.TransportError as e:
            raise _Transient(f"{type(e).__name__}: {e}") from e
        except (httpx.HTTPError, httpx.InvalidURL) as e:
            # An answer that cannot be decoded (a proxy's broken gzip), a URL httpx cannot
            # parse: said here, or it would escape the rollback and leave it in flight.
            raise ExecutorError(False, f"{method} {url} failed: {type(e).__name__}: {e}", reason="rejected") from e
        if resp.is_success:
            return resp
        said = resp.text.strip()[:200]
        if resp.status_code in RETRYABLE_4XX or resp.status_code == 503:
            # 408 (a proxy gave up waiting for the request) and 425 invite a repeat like 429:
            # the Idempotency-Key makes it safe, and refusing for good leaves the bad version serving.
            raise _Transient(f"HTTP {resp.status_code} {said}",
                             retry_after_s(resp.headers.get("Retry-After"), self.clock()))
        if resp.status_code >= 500:
            raise _Transient(f"HTTP {resp.status_code} {said}")
        reason = "unauthorized" if resp.status_code in (401, 403) else "rejected"
        hint = ": check that both sides use the same secret and clocks agree" if reason == "unauthorized" else ""
        raise ExecutorError(False, f"{method} {url} was refused with HTTP {resp.status_code}{hint}: {said}",
                            reason=reason)

    def _request(self, method: str, url: str, body: bytes, headers: dict[str, str], timeout: float) -> httpx.Response:
        return whole_answer(self.http, method, url, content=body if method == "POST" else None, headers=headers,
                            timeout=timeout)

    def _wait(self, state: RetryCallState) -> float:
        """Retry-After when the receiver gave one, else backoff_s doubling; never over max_wait_s."""
        exc = state.outcome.exception() if state.outcome else None
        hinted = exc.retry_after if isinstance(exc, _Transient) else None
        wait = hinted if hinted is not None else self.cfg.backoff_s * 2 ** (state.attempt_number - 1)
        return min(wait, self.cfg.max_wait_s)

    def _secret(self) -> bytes:
        if self.cfg.secret_env is not None:
            value = os.environ.get(self.cfg.secret_env, "").strip()  # as the file: no trailing newline
            if not value:
                raise ExecutorError(False, f"the webhook secret for {self.cfg.url} is missing: environment variable "
                                           f"{self.cfg.secret_env} is not set", reason="config")
            return value.encode()
        assert self.cfg.secret_file is not None  # the config allows exactly one of the two
        path = self.base_dir / Path(self.cfg.secret_file).expanduser()
        try:
            value = path.read_text(encoding="utf-8").strip()
        except OSError as e:
            raise ExecutorError(False, f"cannot read the webhook secret file {path}: {e.strerror}",
                                reason="config") from e
        except UnicodeDecodeError:  # UTF-16 from an editor: a traceback in check-config, not a refusal
            raise ExecutorError(False, f"the webhook secret file {path} is not UTF-8 text (save it as UTF-8)",
                                reason="config") from None
        if not value:
            raise ExecutorError(False, f"the webhook secret file {path} is empty", reason="config")
        return value.encode()

