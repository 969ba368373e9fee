"""Who is calling, decided from the headers alone, before any body is read.

A pure ASGI middleware: for every HTTP request to a protected path it resolves
`Authorization: Bearer <token>` to an `Identity` (monitor/identities.py) and puts it in
the request's state, or answers 401/503 itself without ever calling `receive`, so a
client without a valid token cannot make the server read (or buffer, or parse) one byte
of its body. Which role a route needs is the route's business (`RoleCheck` in deps.py).

Open: liveness, readiness, metrics and the API's own documentation. Slack's callback is
authenticated by Slack's signature over the body instead (api/slack.py).
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from monitor.api.docs import ASSET_PATHS, OAUTH2_REDIRECT
from monitor.config import ConfigError, VigilConfig
from monitor.identities import Identity, TokenTable, load_token_table

log = logging.getLogger("vigil.api")

# Exact paths; the docs' assets are listed one by one (docs.py), not as a prefix.
OPEN_PATHS = frozenset({"/", "/healthz", "/readyz", "/metrics", "/openapi.json", "/docs",
                        OAUTH2_REDIRECT}) | ASSET_PATHS
SIGNED_PATHS = frozenset({"/v1/slack/actions"})  # Slack signs the body; the route checks it
IDENTITY = "identity"  # key of the caller's Identity in the request state (scope["state"])

MISSING = "missing bearer token (Authorization: Bearer <token>)"
INVALID = "invalid bearer token: it matches no configured API token"
NONE_CONFIGURED = ("the API needs a token and none is configured: set api.tokens (or api.token); "
                   "see the README, Identities and roles")


def route_path(scope: Scope) -> str:
    """The path as the router matches it: without the `root_path` a proxy mounts the API under."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root) and path[len(root):len(root) + 1] in ("", "/"):
        return path[len(root):] or "/"
    return path


def is_open(path: str) -> bool:
    return path in OPEN_PATHS or path in SIGNED_PATHS


def bearer_token(scope: Scope) -> str | None:
    """The token of the first Authorization header, if it is a non-empty Bearer one."""
    for name, value in scope.get("headers") or ():
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").strip().partition(" ")
            if scheme.lower() != "bearer":
                return None
            return token.strip() or None
    return None


class TokenTables:
    """The token table of the running configuration, rebuilt when a reload swaps it (a
    token file is read again then, so a rotated secret takes effect with SIGHUP)."""

    def __init__(self, current_config: Callable[[], VigilConfig]) -> None:
        self._current_config = current_config
        self._lock = threading.Lock()
        self._built_for: VigilConfig | None = None
        self._table: TokenTable | None = None

    def current(self) -> TokenTable | None:
        """None when the configured tokens cannot be resolved (logged): the API then refuses."""
        config = self._current_config()
        with self._lock:
            if config is not self._built_for:
                self._built_for = config
                try:
                    self._table = load_token_table(config)
                except ConfigError as e:
                    log.error("API tokens could not be loaded; protected endpoints answer 503: %s", e)
                    self._table = None
            return self._table


class BearerAuth:
    def __init__(self, app: ASGIApp, *, tables: TokenTables) -> None:
        self.app = app
        self.tables = tables

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_open(route_path(scope)):
            await self.app(scope, receive, send)
            return
        identity, refusal = self._identify(scope)
        if refusal is not None:
            await refusal(scope, receive, send)  # a plain Response never calls receive
            return
        scope.setdefault("state", {})[IDENTITY] = identity
        await self.app(scope, receive, send)

    def _identify(self, scope: Scope) -> tuple[Identity | None, JSONResponse | None]:
        table = self.tables.current()
        if table is None:
            return None, JSONResponse({"error": "API tokens could not be loaded (the server log says why)"}, 503)
        if not table:
            return None, JSONResponse({"error": NONE_CONFIGURED}, 503)
        token = bearer_token(scope)
        if token is None:
            return None, JSONResponse({"error": MISSING}, 401, headers={"WWW-Authenticate": "Bearer"})
        identity = table.resolve(token)
        if identity is None:
            client = scope.get("client") or ("?", 0)
            log.warning("refused an invalid bearer token", extra={"path": scope["path"], "client": client[0]})
            return None, JSONResponse({"error": INVALID}, 401,
                                      headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        return identity, None
