"""Columns scored a few at a time in threads (sorting, hashing and the kernels release the GIL)."""
from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def in_threads(fn: Callable[[T], R], items: list[T], workers: int) -> list[R]:
    """[fn(x) for x in items], `workers` at a time in threads; order kept, errors raised."""
    if workers <= 1 or len(items) <= 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(max_workers=min(workers, len(items)), thread_name_prefix="vigil-drift") as ex:
        return list(ex.map(fn, items))
