"""On SQLite, one daemon per store file: a second `vigil run` on the same file refuses to start.

SQLite has no leases to share models between daemons, so two daemons on one file would
both run every model's cycle and send every message twice. The guard is an exclusive
`flock` on `<db file>.lock`, which the kernel drops when the holder dies, kill -9
included: a crash never leaves a stale lock to clean up by hand. The holder writes its
pid into the file so the refusal can name it. PostgreSQL needs no such lock (its
replicas share the models through leases), and in-memory SQLite is private to its
process.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from pathlib import Path
from types import TracebackType

from sqlalchemy.engine import make_url


class AnotherDaemonRunning(RuntimeError):
    """Another daemon already holds this SQLite store; the message says which and what to do."""

    def __init__(self, database: Path, lock_path: Path, holder: str | None) -> None:
        self.database = database
        self.lock_path = lock_path
        self.holder = holder
        who = f"(pid {holder})" if holder else "(pid unknown)"
        super().__init__(f"another Vigil daemon {who} already runs on the SQLite store {database}: it holds the lock "
                         f"{lock_path}. SQLite allows one daemon per store file; stop the other daemon, or use "
                         "PostgreSQL (store url postgresql+psycopg://...) to run several replicas.")

    @property
    def role(self) -> str:
        """What holds the lock when it is not a daemon, as it wrote it (`single_daemon_lock`'s `role`):
        "" for a daemon (its line is "PID on HOST") and for a holder not yet known."""
        return (self.holder or "").partition(", ")[2]

    @property
    def pid(self) -> str:
        """The holder's "PID on HOST"; "unknown" before it wrote its line."""
        return (self.holder or "").partition(", ")[0] or "unknown"


class DaemonLock:
    """The held lock (or nothing to hold); release it with `release()` or by leaving the `with` block."""

    def __init__(self, path: Path | None, fd: int | None) -> None:
        self.path = path
        self._fd = fd

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def __enter__(self) -> DaemonLock:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


def sqlite_file(store_url: str) -> Path | None:
    """The database file of a SQLite URL; None for in-memory SQLite and other databases."""
    url = make_url(store_url)
    if url.get_backend_name() != "sqlite":
        return None
    db = url.database or ""
    if url.query.get("mode") == "memory" or db in ("", ":memory:"):
        return None
    if db.startswith("file:"):  # sqlite:///file:path?uri=true
        db = db[len("file:"):].split("?", 1)[0]
        if db == ":memory:":
            return None
    return Path(db).resolve()


def single_daemon_lock(store_url: str, role: str = "") -> DaemonLock:
    """Hold `<db file>.lock` for as long as this daemon runs, or raise `AnotherDaemonRunning`.
    `role`: what holds it when not a daemon (the terminal's `vigil rollback` moving layers), named
    to whoever is refused."""
    db = sqlite_file(store_url)
    if db is None:
        return DaemonLock(None, None)
    lock_path = db.with_name(db.name + ".lock")
    # No O_TRUNC: a refused opener must not wipe the holder's pid. O_CLOEXEC: a child
    # process (a launched server) must not inherit the lock and outlive us holding it.
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or None
        os.close(fd)
        raise AnotherDaemonRunning(db, lock_path, holder) from None
    except BaseException:
        os.close(fd)
        raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()} on {socket.gethostname()}{', ' + role if role else ''}\n".encode(), 0)
    return DaemonLock(lock_path, fd)
