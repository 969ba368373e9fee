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
entry is never read; writes are atomic (a temporary file named for the writing process and
thread, then a rename), so concurrent writers (a replica's worker processes, two replicas
on one host) or a crash mid-write never leave a torn entry, and a reader that finds an
entry gone (another process evicted it) parses its source again. The spool is bounded in
bytes and drops the oldest entries (last written, or last read where the mount records
access times) past the budget. Each process counts only its own writes, so the count is
checked against the directory itself (under a lock file, one evictor at a time) whenever
it is over the budget or has grown by a sixteenth of it since the last look: other
writers push the spool past its budget by at most that much each. Losing it costs only a
re-parse.

The default directory lies in the shared temporary directory, under a name anyone can
guess, and entry keys are made from what anyone can stat: a folder of that name made by
another user would let them feed every cycle forged samples and profiles (or read the
real ones). So the default directory is made private (0700), and one that is not a plain
directory of this user's, writable by nobody else, is not used (logged once; the sources
are then parsed as without a spool). A configured directory is the operator's choice.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import mmap
import os
import stat
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger("vigil.spool")

DEFAULT_MAX_BYTES = 16 * 2**30
RESCAN_FRACTION = 16  # look at the directory again after writing a 16th of the budget
STALE_TEMPORARY_S = 600.0  # a temporary this old is a dead writer's: a write takes milliseconds


def default_directory() -> Path:
    """Under the system's temporary directory, one per user: survives restarts, not reboots."""
    return Path(tempfile.gettempdir()) / f"vigil-spool-{os.getuid()}"


class Spool:
    def __init__(self, directory: str | Path | None = None, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if max_bytes < 1:
            raise ValueError(f"spool.max_bytes: expected a positive number of bytes, got {max_bytes}")
        self.directory = Path(directory) if directory else default_directory()
        self._shared_tmp = not directory  # the default: in the shared temporary directory
        self._trusted: bool | None = None  # None: not checked yet (or could not be)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._bytes: int | None = None  # the last scan plus this process' writes since (lazy)
        self._written = 0  # bytes this process wrote since the last scan
        self.hits = self.misses = self.evicted = 0

    @property
    def used_bytes(self) -> int:
        """Bytes the spool holds, as this process counts them (scanned on first use)."""
        with self._lock:
            if self._bytes is None:
                self._bytes, self._written = self._scan(), 0
            return self._bytes

    @staticmethod
    def key(*parts: object) -> str:
        return hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:40]

    def _path(self, kind: str, key: str) -> Path:
        return self.directory / kind / f"{key}.bin"

    def _usable(self) -> bool:
        """False for a default directory somebody else could have made or can write (see
        the module doc); checked once, the directory made private if it is missing."""
        if self._trusted is not None:
            return self._trusted
        if not self._shared_tmp:
            self._trusted = True
            return True
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            st = os.lstat(self.directory)
        except OSError:  # no folder to check: put and map say so in their own words
            return True
        why = ("it is not a plain directory" if not stat.S_ISDIR(st.st_mode) else
               f"it belongs to uid {st.st_uid}" if st.st_uid != os.geteuid() else
               "others can write to it" if st.st_mode & 0o002 else
               # (group-writable is fine for one's own group: a umask of 002 makes it so)
               f"group {st.st_gid} can write to it" if st.st_mode & 0o020 and st.st_gid != os.getegid() else "")
        if why:
            log.warning("spool directory not used: samples and profiles are parsed in memory",
                        extra={"path": str(self.directory), "reason": why,
                               "fix": "remove it, or set spool.directory to a directory of your own"})
        self._trusted = not why
        return self._trusted

    def map(self, kind: str, key: str) -> memoryview | None:
        """The entry's bytes, mapped read-only, or None when it is not (or no longer) here."""
        if not self._usable():
            return None
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
        if size > self.max_bytes or not self._usable():
            return False
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Named for the writer, so a dead writer's leftovers are recognisable (see _entries).
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".tmp-{os.getpid()}-{threading.get_ident()}-",
                                       suffix=".part")
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
            self._written += size
            self._bytes = (self._bytes + size - replaced) if self._bytes is not None else None
            look = self._bytes is None or self._bytes > self.max_bytes \
                or self._written * RESCAN_FRACTION > self.max_bytes
        if look:
            self._reconcile()
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
        """(last use, size, path) of every entry; a dead writer's temporary is removed."""
        out: list[tuple[float, int, Path]] = []
        now = time.time()
        try:
            kinds = [d.path for d in os.scandir(self.directory) if d.is_dir(follow_symlinks=False)]
        except OSError:  # no spool yet, or not a directory: nothing in it
            return out
        for kind in kinds:
            try:
                listing = list(os.scandir(kind))
            except OSError:
                continue
            for e in listing:
                try:
                    st = e.stat(follow_symlinks=False)
                    if e.name.endswith(".bin"):
                        out.append((max(st.st_atime, st.st_mtime), st.st_size, Path(e.path)))
                    elif e.name.startswith(".tmp-") and now - st.st_mtime > STALE_TEMPORARY_S:
                        os.unlink(e.path)
                except OSError:  # evicted or renamed by another process meanwhile
                    continue
        return out

    def _scan(self) -> int:
        return sum(size for _, size, _ in self._entries())

    def _reconcile(self) -> None:
        """Count the directory (what every process wrote) and, past the budget, drop the
        least recently used entries down to 90 % of it. One process at a time (a lock file:
        two evictors would each drop the same excess); a mapped entry stays readable by
        whoever holds it, as unlinking does not unmap."""
        with self._exclusive():
            entries = sorted(self._entries())
            total = sum(size for _, size, _ in entries)
            dropped = 0
            if total > self.max_bytes:
                goal = int(self.max_bytes * 0.9)
                for _, size, p in entries:
                    if total <= goal:
                        break
                    try:
                        p.unlink()
                        dropped += 1
                    except FileNotFoundError:  # another process dropped it first
                        pass
                    except OSError as e:  # kept, and counted: the budget is a goal, not a failure
                        log.warning("spool entry could not be evicted", extra={"path": str(p), "error": str(e)})
                        continue
                    total -= size
        with self._lock:
            self._bytes, self._written = total, 0
            self.evicted += dropped

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        """The spool's lock file, held exclusively (the kernel drops it if the holder dies);
        without one (an unwritable directory) the scan goes ahead unlocked."""
        fd: int | None = None
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            fd = None
        try:
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            if fd is not None:
                os.close(fd)  # closing releases the lock


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
