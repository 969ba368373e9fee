"""An optional access log for the HTTP API (`api.access_log: true`): one structured line per
request on logger `vigil.access`, written when the response has been sent. The path is
logged without its query string (where tokens travel); the caller's token never is."""
from __future__ import annotations

import logging
import time
from typing import Any

log = logging.getLogger("vigil.access")

Scope = dict[str, Any]


class AccessLog:
    """ASGI middleware: method, path, status, duration and client of every HTTP request."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began, status = time.perf_counter(), [500]

        async def send_and_note(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            client = scope.get("client")
            log.info("%s %s %d", scope["method"], scope["path"], status[0], extra={
                "method": scope["method"], "path": scope["path"], "status": status[0],
                "duration_ms": round((time.perf_counter() - began) * 1000, 1),
                "client": f"{client[0]}:{client[1]}" if client else None})
