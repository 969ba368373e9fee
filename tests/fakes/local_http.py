"""One handler class served on 127.0.0.1 from a daemon thread: what every fake server shares.

The socket is bound when the object is made, so `url` is known before `start`; `stop`
closes it (connections are refused) and `start` again listens on the same port, as a
dependency that went down and came back. `with` starts it and stops it.
"""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class LocalHTTPServer:
    def __init__(self, handler: type[BaseHTTPRequestHandler], *,
                 server_class: type[ThreadingHTTPServer] = ThreadingHTTPServer, name: str | None = None) -> None:
        self._handler, self._server_class, self._name = handler, server_class, name
        self._server: ThreadingHTTPServer | None = self._bind(0)
        self.port: int = self._server.server_address[1]
        self._serving = False

    def _bind(self, port: int) -> ThreadingHTTPServer:
        server = self._server_class(("127.0.0.1", port), self._handler)
        server.daemon_threads = True
        return server

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._serving

    def start(self) -> None:
        if self._serving:
            return
        if self._server is None:
            self._server = self._bind(self.port)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name=self._name,
                         daemon=True).start()
        self._serving = True

    def __enter__(self) -> LocalHTTPServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self._server is None:
            return
        if self._serving:
            self._server.shutdown()
        self._server.server_close()
        self._server, self._serving = None, False
