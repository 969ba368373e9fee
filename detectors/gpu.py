"""GPU saturation from DCGM and vLLM series: sustained runs past a limit.

    detector = GpuDetector(GpuParams(GpuSignal("gpu_util_pct", 95, "%"), min_duration=300))
    findings = detector.score(NoState(), dcgm_series, start, end)   # the limit is the reference
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from detectors.base import NoState
from detectors.records import Direction, Finding, FindingKind, Series
from detectors.runs import Run, runs_past, trailing_run


@dataclass(frozen=True)
class GpuSignal:
    """One saturation signal: which series and the limit past which it saturates."""

    name: str  # "gpu_util_pct", "fb_used_ratio", "kv_cache_ratio", "requests_waiting"
    limit: float
    unit: str = ""


@dataclass(frozen=True)
class GpuParams:
    signal: GpuSignal
    min_duration: float  # seconds a saturation must have lasted to be a finding
    step: float = 60.0  # the series' sampling step: a run may end this close (x2) to the window end
    model: str | None = None


@dataclass(frozen=True)
class GpuDetector:
    params: GpuParams

    def fit(self, reference: object = None, start: float = 0.0, end: float = 0.0) -> NoState:
        """Nothing to learn: the limit is fixed by configuration."""
        return NoState()

    def score(self, state: NoState, window: Sequence[Series], start: float, end: float) -> list[Finding]:
        """One finding per GPU/pod whose signal is at or past its limit now and has been for
        at least `min_duration`. Only the trailing run counts: a saturation that ended is
        history, which the open incident keeps (its findings are merged across cycles).
        """
        p = self.params
        out: list[Finding] = []
        for s in window:
            s = s.between(start, end)
            if s.empty:
                continue
            run = _saturated_until(s, p.signal.limit, p.step, end, tolerance=2 * p.step)
            if run is None or run.duration < p.min_duration:
                continue
            out.append(_finding(p, s, run, start, end))
        return out


def stopped_while_saturated(window: Sequence[Series], limit: float, start: float, end: float,
                            step: float, min_duration: float = 0.0) -> list[tuple[str, float, float]]:
    """(entity, time, value) of each series that ended, more than two steps before `end`,
    in a run at or past `limit` lasting `min_duration` (a saturation, as `score` counts
    one): its exporter (or its node) went away mid-saturation. `score` has no trailing run
    to judge there, so without this an incident about that GPU would resolve on the
    silence: a dead node read as a calm one. A last point past the limit alone is not one:
    a busy pod a rolling deploy replaced read as a dead node and opened a warning."""
    out = []
    for s in window:
        s = s.between(start, end)
        valued = ~np.isnan(s.values)
        if not valued.any():
            continue
        last = int(np.flatnonzero(valued)[-1])
        t, v = float(s.timestamps[last]), float(s.values[last])
        if end - t <= 2 * step or v < limit * (1 - 1e-9):
            continue
        run = _saturated_until(s, limit, step, t, tolerance=0.0)
        if run is not None and run.duration >= min_duration:
            out.append((_gpu_entity(s), t, v))
    return out


def reporting(window: Sequence[Series], start: float, end: float) -> set[str]:
    """The GPUs (entities) with a valued point in [start, end]."""
    return {_gpu_entity(s) for s in window if bool((~np.isnan(s.between(start, end).values)).any())}


def _saturated_until(s: Series, limit: float, step: float, end: float, tolerance: float) -> Run | None:
    """The run at or past `limit` (a hair of float slack) that reaches `end`, give or take
    `tolerance`; a hole of more than two steps ends a run."""
    ts, values = _holes_as_nan(s, 2 * step)
    return trailing_run(runs_past(ts, values, limit * (1 - 1e-9), above=True), end, tolerance=tolerance)


def _holes_as_nan(s: Series, max_gap: float) -> tuple[np.ndarray, np.ndarray]:
    """The series with a NaN point in each hole longer than `max_gap` (an exporter restart,
    failed scrapes: Prometheus returns no points there), so a run never spans time nobody
    saw: two short saturations either side of a hole are not one long one."""
    holes = np.flatnonzero(np.diff(s.timestamps) > max_gap)
    if not len(holes):
        return s.timestamps, s.values
    mid = (s.timestamps[holes] + s.timestamps[holes + 1]) / 2
    return np.insert(s.timestamps, holes + 1, mid), np.insert(s.values, holes + 1, np.nan)


def _finding(p: GpuParams, s: Series, run: Run, start: float, end: float) -> Finding:
    signal, entity = p.signal, _gpu_entity(s)
    # A run from the window's first step began before it, maybe long before (the open
    # incident's story knows when): its length here is a lower bound, not how long it lasted.
    cut = run.start - start <= p.step
    return Finding(
        kind=FindingKind.GPU_SATURATION,
        entity=entity,
        model=p.model,
        value=run.mean,
        threshold=signal.limit,
        window_start=start,
        window_end=end,
        onset=run.start,
        score=float(min(1.0, 0.6 + 0.4 * min(run.duration / (3 * p.min_duration), 1.0))),
        direction=Direction.UP,
        statistic=signal.name,
        message=(
            f"{signal.name} on {entity}: mean {run.mean:.4g}{signal.unit} >= {signal.limit:.4g}{signal.unit} "
            f"for {'at least ' if cut else ''}{run.duration / 60:.0f} min (peak {run.peak:.4g}{signal.unit})"
        ),
        evidence={
            "series": s.label_str(),
            "saturated_from": run.start,
            "saturated_until": run.end,
            # Whether the run began at the window's start (and so maybe earlier): only then is
            # the story's onset its start; else it is a new run after a spell under the limit.
            "cut": cut,
            "minutes": run.duration / 60.0,
            "peak": run.peak,
            "signal": signal.name,
        },
    )


def _gpu_entity(s: Series) -> str:
    lab = s.labels
    host = lab.get("Hostname") or lab.get("instance") or lab.get("node")
    gpu = lab.get("gpu")
    pod = lab.get("pod")
    parts = [p for p in (host, f"gpu {gpu}" if gpu is not None else None, pod) if p]
    return "/".join(parts) if parts else s.label_str()
