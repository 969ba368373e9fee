"""What this process and its children (the sweep's worker processes) use, from Linux
/proc: CPU seconds, resident memory and bytes written. `getrusage(RUSAGE_CHILDREN)`
counts only children that exited and were waited for, and the workers live on."""
from __future__ import annotations

import os
import threading
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def pids(root: int | None = None) -> list[int]:
    """A process (default: this one) and its live children."""
    root = os.getpid() if root is None else root
    out = [root]
    for task in Path(f"/proc/{root}/task").glob("*/children"):
        try:
            out.extend(int(p) for p in task.read_text().split())
        except OSError:
            continue
    return out


def _read(pid: int, name: str) -> str:
    try:
        return Path(f"/proc/{pid}/{name}").read_text()
    except OSError:  # gone since it was listed
        return ""


def cpu_seconds(tree: bool = True) -> float:
    """User + system CPU seconds of the tree's live processes (`tree=False`: this process only)."""
    total = 0.0
    for pid in pids() if tree else [os.getpid()]:
        fields = _read(pid, "stat").rpartition(")")[2].split()
        if len(fields) > 12:
            total += (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime (fields 14, 15)
    return total


def _field(text: str, key: str) -> int:
    for line in text.splitlines():
        if line.startswith(key):
            return int(line.split()[1])
    return 0


def rss_mb(root: int | None = None) -> float:
    """Resident memory of the tree, summed (pages the processes share count once each)."""
    return sum(_field(_read(pid, "status"), "VmRSS:") for pid in pids(root)) / 1024.0


def pss_mb() -> float:
    """Proportional memory of the tree: a page shared by k processes counts 1/k in each
    (the libraries and the memory-mapped spool are shared), so the sum is what the
    machine gives the tree."""
    return sum(_field(_read(pid, "smaps_rollup"), "Pss:") for pid in pids()) / 1024.0


def written_bytes() -> int:
    """Bytes the tree's live processes have written to storage so far."""
    return sum(_field(_read(pid, "io"), "write_bytes:") for pid in pids())


class PeakRss:
    """The largest `rss_mb()` and `pss_mb()` seen, sampled on a thread of its own every `every` seconds."""

    def __init__(self, every: float = 0.5) -> None:
        self.peak = 0.0
        self.peak_pss = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, args=(every,), name="peak-rss", daemon=True)

    def start(self) -> PeakRss:
        self._thread.start()
        return self

    def _loop(self, every: float) -> None:
        while True:
            self.peak = max(self.peak, rss_mb())
            self.peak_pss = max(self.peak_pss, pss_mb())
            if self._stop.wait(every):
                return

    def stop(self) -> float:
        self._stop.set()
        self._thread.join(timeout=5)
        return self.peak
