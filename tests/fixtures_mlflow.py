"""MLflow fixtures: a real registry over SQLite, and a real `mlflow server` on 127.0.0.1.

The fixtures are registered for every test by tests/conftest.py (`pytest_plugins`).
A fresh SQLite registry costs ~1.5 s (schema migrations) and a server 6-13 s, so both
are module-scoped: tests share them and keep apart by using their own model names.
"""
from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.config import MlflowConfig
from monitor.replay.local_mlflow import LocalMlflowServer, sqlite_tracking_uri
from monitor.sources.registry import RegistrySource


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMlflowServer]:
    server = LocalMlflowServer(tmp_path_factory.mktemp("mlflow-server"))
    server.start(timeout_s=90)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def sqlite_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistrySource]:
    db = tmp_path_factory.mktemp("mlflow-sqlite") / "mlflow.db"
    with RegistrySource(MlflowConfig(tracking_uri=sqlite_tracking_uri(db), timeout_s=10)) as source:
        yield source


@pytest.fixture
def model_name(request: pytest.FixtureRequest) -> str:
    """A registered-model name of this test's own (fixtures are shared per module)."""
    return "m-" + re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name)[:80]


class SilentServer:
    """Accepts TCP connections and never answers: the slowest way a server can be dead."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._conns: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        self.sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
                self._conns.append(conn)  # held open, never read or answered
            except OSError:
                continue

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        for c in self._conns:
            c.close()
        self.sock.close()


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    server = SilentServer()
    try:
        yield server
    finally:
        server.close()


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (connection refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
