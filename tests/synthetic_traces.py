"""A synthetic call tree shared by the trace-detector and RCA tests."""
from __future__ import annotations

import random

from detectors.records import Span

MS = 1_000_000


def synthetic_traces(n: int, t0_s: float, *, pre_ms: float = 50, edge_ms: float = 2, error: bool = False,
            call_cache: bool = True, seed: int = 0) -> list[Span]:
    """gateway -> api (client span) -> preprocess service; api also calls cache."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        tid = f"{seed:08x}{i:024x}"
        t = int((t0_s + i) * 1e9)
        pre = int(rng.uniform(0.9, 1.1) * pre_ms * MS)
        edge = int(rng.uniform(0.9, 1.1) * edge_ms * MS)
        own = int(rng.uniform(4, 6) * MS)
        cache = int(rng.uniform(1, 2) * MS) if call_cache else 0
        root_end = t + own + edge + pre + cache + 2 * MS
        out += [
            Span(tid, f"{i:012x}0001", None, "api", "POST /predict", t, root_end, error=error),
            Span(tid, f"{i:012x}0002", f"{i:012x}0001", "api", "HTTP POST", t + own, t + own + edge + pre,
                 error=error),
            Span(tid, f"{i:012x}0003", f"{i:012x}0002", "preprocess", "transform", t + own + edge // 2,
                 t + own + edge // 2 + pre, error=error),
        ]
        if call_cache:
            c0 = t + own + edge + pre
            out.append(Span(tid, f"{i:012x}0004", f"{i:012x}0001", "api", "cache.get", c0, c0 + cache))
    return out
