"""The cycle never reads the wall clock itself: it is handed a Clock (live or replay)."""
from __future__ import annotations

import time
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
