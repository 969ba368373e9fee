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
    # A slowdown's surprise is also the binomial chance of so many current times beyond
    # every baseline time: a delay of seconds on most of a few calls is strong evidence
    # even when the calls it spared widen the t-test's spread.
    beyond: bool = True
    # Doublings of the median at which a slowdown's effect reaches 1 - 1/e: a call made
    # 500x slower says more about the fault than a 3x shift of a few milliseconds, however
    # many spans make the latter significant. Chosen in issue 13 (README: "Latency evidence
    # by its size"); 3-5 score alike, 1 was the old reading.
    effect_scale: float = 4.0
    # An edge with no baseline of its own is judged against pooled edges (see
    # checks._edge_reference); a finding against every call of the system counts this
    # much, being less specific (0: such edges are not judged), unless the pair's median
    # is now beyond every call of the reference: then it counts in full.
    pooled_weight: float = 0.5
    # With no reference calls at all, the window's other pairs stand in; pairs' own normal
    # edge times sit within 2.6x of the system's median (both Nezha reference days), so a
    # pair judged against them must be this many times slower than their median.
    peer_min_ratio: float = 4.0
