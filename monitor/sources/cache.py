"""A byte-bounded cache for what cycles re-read (sample files, reference profiles).

A sweep visits every model in the same order each interval, and LRU evicts each entry
just before its next use when the fleet does not fit: every read would miss. So when the
budget is full a new entry is not admitted (a fixed part of the fleet stays cached and
the rest is read each cycle), and callers drop what no window needs any more
(`discard`). Thread-safe: cycles of different models run at once.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any


class BoundedCache:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = self.misses = self.refused = 0

    @property
    def bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: Hashable) -> Any | None:
        with self._lock:
            hit = self._items.get(key)
            if hit is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return hit[0]

    def put(self, key: Hashable, value: Any, size: int) -> bool:
        """Keep `value` if it fits in the budget; False when it was not admitted."""
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            if self._bytes + size > self.max_bytes:
                self.refused += 1
                return False
            self._items[key] = (value, size)
            self._bytes += size
            return True

    def discard(self, key: Hashable) -> None:
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
