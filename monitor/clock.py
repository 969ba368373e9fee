"""The cycle never reads the wall clock itself: it is handed a Clock (live, replay or file)."""
from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float: ...


class LiveClock:
    def now(self) -> float:
        return time.time()


class ReplayClock:
    """Stepped by the replay driver over recorded history."""

    def __init__(self, start: float) -> None:
        self.t = start

    def now(self) -> float:
        return self.t

    def set(self, t: float) -> None:
        self.t = t


class FileClock:
    """Replay time shared by several processes: the file holds epoch seconds, written by
    one driver (the chaos benchmark) and read by every replica. A missing or half-written
    file reads as the last good value."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._last = float(self.path.read_text().strip())

    def now(self) -> float:
        with contextlib.suppress(OSError, ValueError):
            self._last = float(self.path.read_text().strip())
        return self._last

    @staticmethod
    def write(path: str | Path, t: float) -> None:
        """Write atomically, so a reader never sees half a number."""
        p = Path(path)
        tmp = p.with_name(p.name + ".tmp")
        tmp.write_text(repr(float(t)))
        tmp.replace(p)
