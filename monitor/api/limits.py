"""Limits before work: a pure ASGI middleware that refuses, before any route runs,

* a write (POST, PUT, PATCH, DELETE) beyond the client's rate: 429 with `Retry-After`.
  One token bucket per client, the client being its bearer token's fingerprint when it
  sends one the token check accepted, else its address (`api.rate_limit: {per_second, burst}`; null: off);
* a body over `api.max_body_bytes` (`api.max_samples_body_bytes` for `POST /v1/samples`):
  413 at once when Content-Length says so, else as soon as the bytes received pass the
  limit, so a client streaming 50 MB costs the server at most the limit, never the body.

The limits are read from the live configuration on every request (a reload applies
them). Bodies are the usual `{"error": ...}` (monitor/api/errors.py).
"""
from __future__ import annotations

import hashlib
import json
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from monitor.api.auth import is_open, route_path
from monitor.config import ApiConfig

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
SAMPLES_PATH = "/v1/samples"
LABELS_PATH = "/v1/labels"  # batches of up to 100,000 labels: the samples limit too
# Buckets kept at most: a full bucket is what a forgotten client would get anyway, so the
# least recently seen ones go first and a flood of new addresses cannot grow memory.
MAX_CLIENTS = 10_000


# For the `responses=` of every write route: what this middleware may answer instead.
WRITE_LIMIT_RESPONSES: dict[int | str, dict[str, Any]] = {
    413: {"description": "Request body over api.max_body_bytes (samples: api.max_samples_body_bytes)"},
    429: {"description": "Too many writes from this client (api.rate_limit)",
          "headers": {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}}},
}


class BodyTooLarge(HTTPException):
    """The body passed its limit while being read: a 413 (a FastAPI HTTPException, so
    the route's body reader lets it through to the `{error}` handler)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body over {limit} bytes (api.max_body_bytes / api.max_samples_body_bytes)",
                         headers={"Connection": "close"})


@dataclass
class _Bucket:
    tokens: float
    at: float


class TokenBuckets:
    """Per-client token buckets: `burst` requests at once, refilled at `per_second`."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def take(self, client: str, per_second: float, burst: int) -> float:
        """0 when the request may go ahead (a token is spent), else seconds until it may."""
        now = self._clock()
        bucket = self._buckets.pop(client, None) or _Bucket(float(burst), now)
        bucket.tokens = min(float(burst), bucket.tokens + (now - bucket.at) * per_second)
        bucket.at = now
        self._buckets[client] = bucket  # most recently seen last
        while len(self._buckets) > MAX_CLIENTS:
            self._buckets.popitem(last=False)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / per_second


def client_key(scope: Scope) -> str:
    """Who is asking: a fingerprint of the bearer token (never the token), else the peer address."""
    for name, value in scope.get("headers", ()):
        if name == b"authorization" and value[:7].lower() == b"bearer ":
            return "token:" + hashlib.sha256(value[7:].strip()).hexdigest()[:16]
    return address_key(scope)


def address_key(scope: Scope) -> str:
    client = scope.get("client")
    return f"addr:{client[0]}" if client else "addr:unknown"


def rate_key(scope: Scope) -> str:
    """The bucket of this request. On a path the token middleware checked, the bearer token
    is a real one (else it answered 401): its fingerprint. On an open path (Slack's callback)
    nobody checked it, and a client inventing a new one per request would get a new bucket
    each time: the address there."""
    return address_key(scope) if is_open(route_path(scope)) else client_key(scope)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:  # the server (h11, httptools) refuses it before we see it
                return None
    return None


async def _refuse(send: Send, status: int, error: str, headers: dict[str, str]) -> None:
    body = json.dumps({"error": error}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class EdgeLimits:
    """The ASGI middleware; `settings` returns the live `api` configuration."""

    def __init__(self, app: ASGIApp, settings: Callable[[], ApiConfig]) -> None:
        self.app, self.settings = app, settings
        self.buckets = TokenBuckets()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        api = self.settings()
        rate = api.rate_limit
        if rate is not None and scope["method"] in WRITE_METHODS:
            wait = self.buckets.take(rate_key(scope), rate.per_second, rate.burst)
            if wait > 0:
                await _refuse(send, 429, f"too many requests: at most {rate.burst} at once, then "
                              f"{rate.per_second:g} per second per client (api.rate_limit); retry later",
                              {"Retry-After": str(max(1, math.ceil(wait)))})
                return
        # The path as routed (without a proxy's root_path), as the token check reads it.
        batch = route_path(scope) in (SAMPLES_PATH, LABELS_PATH)
        limit = api.max_samples_body_bytes if batch else api.max_body_bytes
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            # Refused unread: nothing of the body is ever buffered.
            await _refuse(send, 413, f"request body of {declared} bytes is over the limit of {limit} bytes",
                          {"Connection": "close"})
            return
        await _Counted(self.app, limit)(scope, receive, send)


class _Counted:
    """One request whose body is counted as it arrives."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit
        self.received = 0
        self.started = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def counted_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                self.received += len(message.get("body", b""))
                if self.received > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        async def watched_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except BodyTooLarge as e:
            # Normally the app's HTTPException handler answers; this catches a reader
            # outside a route (another middleware) before anything was sent.
            if self.started:
                raise
            await _refuse(send, 413, str(e.detail), {"Connection": "close"})
