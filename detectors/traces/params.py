"""The trace detector's parameters."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TraceParams:
    min_spans: int = 5  # fewer current spans of an operation/edge than this is never a finding
    min_ratio: float = 1.5  # median self/edge time must grow by this factor
    min_added_ms: float = 1.0  # ... and by at least this much
    min_surprise: float = 2.0  # -log10 p after correcting for the number of tests
    vanish_min_expected: float = 5.0
    vanish_max_ratio: float = 0.2
    appear_min_count: int = 5
    persistent_weight: float = 0.5  # weight of a finding already there before the alert (history_start)
