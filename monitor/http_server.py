"""The HTTP API's uvicorn server on a thread of its own, stopped by the daemon.

uvicorn run on the main thread installs its own SIGTERM/SIGINT handlers and, once it has
shut down, raises the signal again (uvicorn >= 0.29), so the process dies by the signal
before the daemon's clean-up runs: running cycles abandoned, the outbox not drained. On a
thread uvicorn installs no handlers; the main thread owns the signals and tells the
server when to stop.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any

log = logging.getLogger("vigil.daemon")
API_STOP_TIMEOUT_S = 5  # open requests get this long once the server is asked to stop


class ApiThread:
    def __init__(self, app: Any, host: str, port: int, *, access_log: bool = False) -> None:
        import uvicorn

        if access_log:  # Vigil's own structured line, not uvicorn's (its format has no fields)
            from monitor.access_log import AccessLog

            app = AccessLog(app)

        # log_config=None: uvicorn's own records (an exception in the app, a bad request)
        # go to Vigil's handler, which redacts secrets, not to a handler of uvicorn's.
        self.server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning",
                                                    access_log=False, log_config=None,
                                                    timeout_graceful_shutdown=API_STOP_TIMEOUT_S))
        self.thread = threading.Thread(target=self._run, name="vigil-api", daemon=True)
        self.error: BaseException | None = None

    def _run(self) -> None:
        try:
            self.server.run()
        except BaseException as e:  # SystemExit when the port is taken: the daemon reports it
            self.error = e

    def start(self) -> ApiThread:
        self.thread.start()
        return self

    def wait_listening(self, timeout: float) -> bool:
        """Wait until the server listens (True), or its thread ended first (False: a port
        taken, `error`); still starting after `timeout`: True, the daemon watches it after."""
        deadline = time.monotonic() + timeout
        while not self.server.started and self.thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.server.started or self.thread.is_alive()

    def failure(self) -> str:
        """Why the server thread ended, in words: uvicorn's start-up failure is a bare
        SystemExit(3), which the daemon's log printed as "(3; see the error above)"."""
        if isinstance(self.error, SystemExit):
            return f"uvicorn stopped at start-up, exit code {self.error.code}"
        return repr(self.error) if self.error is not None else "no error given"

    def alive(self) -> bool:
        return self.thread.is_alive()

    def stop(self, timeout: float) -> bool:
        """Ask the server to stop and wait up to `timeout`; True when it has."""
        self.server.should_exit = True
        self.thread.join(max(timeout, 0.0))
        return not self.thread.is_alive()
