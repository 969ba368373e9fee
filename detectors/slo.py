"""SLO checks: is the objective breached at the end of the window, and since when.

    detector = SloDetector(SloParams(slo="p99", threshold=0.5, above=True, step=60, unit="s"))
    findings = detector.score(NoState(), p99_series, start, end)   # the objective is the reference
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from detectors.base import NoState
from detectors.numbers import spelt
from detectors.records import Direction, Finding, FindingKind, Series
from detectors.runs import Run, runs_past, trailing_run


@dataclass(frozen=True)
class SloParams:
    slo: str
    threshold: float
    above: bool  # True: values above the threshold breach it (latency); False: below (availability)
    step: float  # the series' sampling step, seconds: a run may end this close to the window end
    unit: str = ""
    model: str | None = None


@dataclass(frozen=True)
class SloDetector:
    params: SloParams

    def fit(self, reference: object = None, start: float = 0.0, end: float = 0.0) -> NoState:
        """Nothing to learn: the objective is fixed by configuration."""
        return NoState()

    def score(self, state: NoState, window: Series, start: float, end: float) -> list[Finding]:
        """A finding when the latest points breach the SLO.

        The breach is judged on the trailing run only: a spike that ended earlier in the
        window is history, not a current breach (the consecutive-cycle count in the policy
        decides when a breach pages).
        """
        p = self.params
        s = window.between(start, end)
        if s.empty:
            return []
        runs = runs_past(s.timestamps, s.values, p.threshold, above=p.above)
        run = trailing_run(runs, end, tolerance=1.5 * p.step)
        if run is None:
            return []
        return [_finding(p, s, run, start, end)]


def _finding(p: SloParams, s: Series, run: Run, start: float, end: float) -> Finding:
    # The value shown is the breach's latest point: with the run-end tolerance the very
    # last point may already be back under the threshold.
    latest = float(s.values[np.searchsorted(s.timestamps, run.end)])
    over = (run.mean - p.threshold) / abs(p.threshold) if p.threshold else 1.0
    cmp = ">" if p.above else "<"
    unit = p.unit
    return Finding(
        kind=FindingKind.SLO_BREACH,
        entity=p.slo,
        model=p.model,
        value=latest,
        threshold=p.threshold,
        window_start=start,
        window_end=end,
        onset=run.start,
        score=float(min(1.0, 0.5 + abs(over))),
        direction=Direction.UP if p.above else Direction.DOWN,
        statistic=p.slo,
        message=(
            f"SLO {p.slo}: {spelt(latest, '.4g', unit)} {cmp} {spelt(p.threshold, '.4g', unit)} "
            f"for {run.duration / 60:.0f} min (peak {spelt(run.peak, '.4g', unit)})"
        ),
        evidence={
            "series": s.label_str(),
            "breach_start": run.start,
            "breach_minutes": run.duration / 60.0,
            "peak": run.peak,
            "mean_during_breach": run.mean,
            "unit": unit,
        },
    )
