"""The log detector's parameters."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LogParams:
    min_count: int = 3  # fewer lines than this is never a finding
    min_ratio: float = 2.0  # rate-rise findings need at least this current/expected ratio
    min_surprise: float = 2.0  # -log10 p after the multiple-testing correction
    drain_sim_th: float = 0.5
    drain_depth: int = 4
    vanish_min_expected: float = 8.0  # an expected template must have been this frequent
    vanish_max_ratio: float = 0.2
    vanish_branch_rate: float = 0.5  # lines per run below which a vanished line is scaled down
    # broken sequences: B must follow A in at least this share of reference spans with A ...
    pair_min_hold: float = 0.95
    pair_min_lines: int = 8  # ... over at least this many reference lines of A
    pair_min_broken: int = 3  # window spans with fewer B than A needed for a finding
    quiet: bool = True  # without spans, templates that stopped while the service kept logging (quiet.py)
