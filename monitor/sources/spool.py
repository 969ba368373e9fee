"""A replica-local disk spool of what cycles re-read, memory-mapped on each use.

A fleet's working set (every model's sample window and training profile: about 5 MB a
model with 50 features and 5,000 rows) does not fit in a process's memory at a thousand
models, and parsing it again each minute (parquet decode, timestamp conversion, sorting)
costs more than the drift test itself. So each input is parsed once and written here in a
form that maps straight into arrays (Arrow IPC for sample files, the profile's own bytes
for references); a cycle maps it, uses it and drops it. The pages live in the operating
system's page cache, shared and evictable, not in the process: memory stays flat in the
fleet's size.

Entries are keyed by what they were made from (a file's path, mtime and size), so a stale
entry is never read; writes are atomic (temporary file, then rename), so two replicas or
a crash mid-write never leave a torn entry; the spool is bounded in bytes and drops the
oldest entries (last written, or last read where the mount records access times) past the
budget. Losing it costs only a re-parse.
"""
from __future__ import annotations

import hashlib
import logging
import mmap
import os
import tempfile
import threading
from pathlib import Path

log = logging.getLogger("vigil.spool")

DEFAULT_MAX_BYTES = 16 * 2**30


def default_directory() -> Path:
    """Under the system's temporary directory, one per user: survives restarts, not reboots."""
    return Path(tempfile.gettempdir()) / f"vigil-spool-{os.getuid()}"


class Spool:
    def __init__(self, directory: str | Path | None = None, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if max_bytes < 1:
            raise ValueError(f"spool.max_bytes: expected a positive number of bytes, got {max_bytes}")
        self.directory = Path(directory) if directory else default_directory()
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._bytes: int | None = None  # counted lazily: the first write scans the directory
        self.hits = self.misses = self.evicted = 0

    @property
    def used_bytes(self) -> int:
        """Bytes the spool holds, as this process counts them (scanned on first use)."""
        with self._lock:
            if self._bytes is None:
                self._bytes = self._scan()
            return self._bytes

    @staticmethod
    def key(*parts: object) -> str:
        return hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:40]

    def _path(self, kind: str, key: str) -> Path:
        return self.directory / kind / f"{key}.bin"

    def map(self, kind: str, key: str) -> memoryview | None:
        """The entry's bytes, mapped read-only, or None when it is not (or no longer) here."""
        path = self._path(kind, key)
        try:
            with open(path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                if size == 0:
                    return None
                mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except FileNotFoundError:
            self.misses += 1
            return None
        except OSError as e:  # unreadable spool: parse the source again, say why once per entry
            log.warning("spool entry unreadable, re-reading its source", extra={"path": str(path), "error": str(e)})
            self.misses += 1
            return None
        self.hits += 1
        return memoryview(mm)

    def put(self, kind: str, key: str, data: bytes | memoryview) -> bool:
        """Write an entry atomically; False (and a log line) when the disk refuses it."""
        path = self._path(kind, key)
        size = len(data)
        if size > self.max_bytes:
            return False
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                replaced = _size(path)  # an overwrite grows the spool by the difference only
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as e:
            log.warning("spool write failed, the source is re-read each cycle",
                        extra={"path": str(path), "error": str(e)})
            return False
        with self._lock:
            if self._bytes is None:
                self._bytes = self._scan()
            else:
                self._bytes += size - replaced
            over = self._bytes > self.max_bytes
        if over:
            self._evict()
        return True

    def discard(self, kind: str, key: str) -> None:
        path = self._path(kind, key)
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            return
        with self._lock:
            if self._bytes is not None:
                self._bytes -= size

    def _entries(self) -> list[tuple[float, int, Path]]:
        out = []
        for p in self.directory.glob("*/*.bin"):
            try:
                st = p.stat()
            except FileNotFoundError:
                continue
            out.append((st.st_atime if st.st_atime > st.st_mtime else st.st_mtime, st.st_size, p))
        return out

    def _scan(self) -> int:
        return sum(size for _, size, _ in self._entries())

    def _evict(self) -> None:
        """Drop the least recently used entries until the spool is at 90 % of its budget
        (a mapped entry stays readable by whoever holds it: unlinking does not unmap)."""
        entries = sorted(self._entries())
        total = sum(size for _, size, _ in entries)
        goal = int(self.max_bytes * 0.9)
        for _, size, p in entries:
            if total <= goal:
                break
            p.unlink(missing_ok=True)
            total -= size
            self.evicted += 1
        with self._lock:
            self._bytes = total


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
