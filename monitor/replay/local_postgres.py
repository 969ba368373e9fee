"""A throwaway PostgreSQL server on 127.0.0.1, from Debian's `postgresql` package, for the
store tests and the chaos benchmark (several replicas on one store).

    with LocalPostgres() as pg:
        url = pg.url        # postgresql+psycopg://postgres@127.0.0.1:PORT/postgres

start() runs `initdb` into a fresh temporary directory (trust authentication, no fsync:
the data are thrown away) and starts `postgres` in its own process group; stop() asks for
a fast shutdown (SIGINT: open sessions are cut, which a smart shutdown would wait for),
then kills the group if it lingers, and removes the directory. As root, the server runs
as the `postgres` user (PostgreSQL refuses to run as root) and the directory is its.
"""
from __future__ import annotations

import atexit
import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

INSTALL_HINT = "apt-get install -y --no-install-recommends postgresql"


class PostgresNotInstalled(RuntimeError):
    """initdb/postgres were not found under /usr/lib/postgresql/*/bin."""

    def __init__(self) -> None:
        super().__init__(f"PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin/initdb); "
                         f"install them with: apt-get update && {INSTALL_HINT}")


class LocalPostgresError(RuntimeError):
    """initdb or the server failed; the message carries the tail of its log."""


def find_bindir() -> Path | None:
    """The newest installed server's bin directory, or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


class LocalPostgres:
    """A PostgreSQL server this object started and will stop; a context manager."""

    def __init__(self, *, port: int | None = None) -> None:
        self.port = port
        self.tmp: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The SQLAlchemy URL Vigil's `store.url` takes."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self._port()}/postgres"

    @property
    def conninfo(self) -> str:
        """The same database for psycopg directly (a benchmark holding a lock, say)."""
        return f"host=127.0.0.1 port={self._port()} user=postgres dbname=postgres"

    def _port(self) -> int:
        if self.port is None or self._proc is None:
            raise RuntimeError("LocalPostgres is not started")
        return self.port

    def start(self, timeout_s: float = 60) -> str:
        """initdb, start, wait until a connection succeeds; return the URL."""
        if self._proc is not None and self._proc.poll() is None:
            return self.url
        bindir = find_bindir()
        if bindir is None:
            raise PostgresNotInstalled()
        self.tmp = Path(tempfile.mkdtemp(prefix="vigil-pg-"))
        if os.geteuid() == 0:
            shutil.chown(self.tmp, "postgres", "postgres")
        data = self.tmp / "data"
        init = subprocess.run(_as_postgres([str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
                                            "--no-sync", "-E", "UTF8"]), capture_output=True, timeout=120)
        if init.returncode != 0:
            raise LocalPostgresError(f"initdb failed ({init.returncode}): {init.stderr.decode()[-2000:]}")
        self.port = self.port or _free_port()
        log = self.tmp / "pg.log"
        with open(log, "w") as err:  # the child keeps its own copy of the descriptor
            self._proc = subprocess.Popen(
                _as_postgres([str(bindir / "postgres"), "-D", str(data), "-h", "127.0.0.1", "-p", str(self.port),
                              "-k", str(self.tmp), "-c", "fsync=off"]),
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
        atexit.register(self.stop)
        self._wait_ready(log, timeout_s)
        return self.url

    def _wait_ready(self, log: Path, timeout_s: float) -> None:
        import psycopg

        assert self._proc is not None
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                psycopg.connect(self.conninfo, connect_timeout=2).close()
                return
            except psycopg.OperationalError as e:
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    tail = log.read_text(errors="replace")[-2000:]
                    self.stop()
                    raise LocalPostgresError(f"postgres did not start on port {self.port}: {tail}") from e
                time.sleep(0.2)

    def stop(self) -> None:
        """Fast shutdown, then SIGKILL after 20 s; remove the data; idempotent."""
        proc, self._proc = self._proc, None
        atexit.unregister(self.stop)
        if proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGINT)  # fast shutdown: SIGTERM would wait for every session
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None

    def __enter__(self) -> LocalPostgres:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
