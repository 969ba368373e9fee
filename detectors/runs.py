"""Runs of consecutive points past a threshold: the shared core of SLO and GPU checks."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Run:
    start: float  # time of the first point past the threshold
    end: float  # time of the last point past the threshold
    peak: float  # worst value in the run
    mean: float
    n_points: int

    @property
    def duration(self) -> float:
        return self.end - self.start


def runs_past(
    timestamps: np.ndarray, values: np.ndarray, threshold: float, *, above: bool = True
) -> list[Run]:
    """Maximal runs of points strictly past `threshold` (NaN breaks a run: missing is not bad)."""
    with np.errstate(invalid="ignore"):
        bad = values > threshold if above else values < threshold
    if not bad.any():
        return []
    edges = np.diff(np.concatenate(([0], bad.view(np.int8), [0])))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1) - 1
    out = []
    for s, e in zip(starts, ends, strict=True):  # every run that starts ends
        seg = values[s : e + 1]
        out.append(
            Run(
                start=float(timestamps[s]),
                end=float(timestamps[e]),
                peak=float(seg.max() if above else seg.min()),
                mean=float(seg.mean()),
                n_points=int(e - s + 1),
            )
        )
    return out


def trailing_run(runs: list[Run], window_end: float, tolerance: float) -> Run | None:
    """The run still going at the end of the window (its last point within `tolerance`)."""
    if runs and window_end - runs[-1].end <= tolerance:
        return runs[-1]
    return None
