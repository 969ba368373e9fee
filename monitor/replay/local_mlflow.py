"""A local `mlflow server` on 127.0.0.1 (SQLite backend) for the demo, replay and tests.

    with LocalMlflowServer(Path("/tmp/vigil-mlflow")) as server:
        url = server.url          # http://127.0.0.1:<port>
        ...

Start-up takes several seconds (the server runs the schema migrations on a new
database); `MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false` skips the job runner, which
roughly halves start time and memory.
"""
from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import BinaryIO

import httpx

log = logging.getLogger(__name__)


def sqlite_tracking_uri(path: Path) -> str:
    """sqlite:////abs/path/mlflow.db (an absolute path: MLflow resolves relative ones
    against the working directory of whichever process opens them)."""
    return f"sqlite:///{Path(path).resolve()}"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class LocalMlflowServer:
    """`mlflow server` in its own process group, with everything it writes under `workdir`."""

    def __init__(self, workdir: Path, *, port: int | None = None) -> None:
        self.workdir = Path(workdir).resolve()
        self.port = port
        self.db_path = self.workdir / "mlflow.db"
        self.artifacts = self.workdir / "artifacts"
        self.log_path = self.workdir / "mlflow-server.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_fh: BinaryIO | None = None
        self._log_start = 0

    @property
    def url(self) -> str:
        if self.port is None or self._proc is None:
            raise RuntimeError("LocalMlflowServer is not started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def tracking_uri(self) -> str:
        """The same registry without the server (direct SQLite access)."""
        return sqlite_tracking_uri(self.db_path)

    def start(self, timeout_s: float = 60) -> str:
        """Start the server and wait until GET /health answers OK; return its URL."""
        if self._proc is not None and self._proc.poll() is None:
            return self.url
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.artifacts.mkdir(exist_ok=True)
        if self.port is None:
            self.port = _free_port()
        elif not _port_free(self.port):
            raise RuntimeError(f"cannot start mlflow server: 127.0.0.1:{self.port} is already in use")
        cmd = [
            sys.executable, "-m", "mlflow", "server",
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--backend-store-uri", sqlite_tracking_uri(self.db_path),
            # both, or the server writes ./mlartifacts or ./mlruns in its working directory
            "--default-artifact-root", str(self.artifacts),
            "--artifacts-destination", str(self.artifacts),
            "--workers", "1",
        ]
        env = {
            **os.environ,
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
            "MLFLOW_DISABLE_TELEMETRY": "true",  # no outbound calls from a test or demo server
        }
        self._log_fh = self.log_path.open("ab")
        self._log_start = self._log_fh.tell()
        started = time.monotonic()
        self._proc = subprocess.Popen(
            cmd, cwd=self.workdir, env=env, stdin=subprocess.DEVNULL,
            stdout=self._log_fh, stderr=subprocess.STDOUT, start_new_session=True,
        )
        health = f"http://127.0.0.1:{self.port}/health"
        deadline = started + timeout_s
        with httpx.Client(timeout=2.0) as http:
            while time.monotonic() < deadline:
                if self._proc.poll() is not None or self._bind_failed():
                    code = self._proc.returncode
                    self.stop()
                    raise RuntimeError(f"mlflow server (port {self.port}) failed before it was ready"
                                       f"{'' if code is None else f' (exit code {code})'}:\n{self.log_tail()}")
                try:
                    r = http.get(health)
                    if r.status_code == 200 and r.text.strip() == "OK":
                        log.info("mlflow server ready", extra={"url": self.url,
                                                               "start_s": round(time.monotonic() - started, 2)})
                        return self.url
                except httpx.TransportError:
                    pass
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"mlflow server on port {self.port} not ready within {timeout_s:g}s:\n{self.log_tail()}")

    def _bind_failed(self) -> bool:
        # uvicorn logs the bind error but its parent lingers for many seconds before exiting
        try:
            with self.log_path.open("rb") as fh:
                fh.seek(self._log_start)
                return b"address already in use" in fh.read()
        except OSError:
            return False

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no server log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """Terminate the whole process group (uvicorn and its worker); idempotent."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        if proc is not None:
            # the worker may outlive the parent briefly; the group id is the parent's pid
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        if self._log_fh is not None:
            self._log_fh.close()
            self._log_fh = None

    def __enter__(self) -> LocalMlflowServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
