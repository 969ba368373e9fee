"""SLO checks: is the objective breached at the end of the window, and since when."""
from __future__ import annotations

import numpy as np

from detectors.records import Direction, Finding, FindingKind, Series
from detectors.runs import runs_past, trailing_run


def detect_slo_breach(
    series: Series,
    *,
    slo: str,
    threshold: float,
    above: bool,
    model: str | None,
    window_start: float,
    window_end: float,
    step: float,
    unit: str = "",
) -> Finding | None:
    """A finding when the latest points breach the SLO.

    The breach is judged on the trailing run only: a spike that ended earlier in the
    window is history, not a current breach (the consecutive-cycle count in the policy
    decides when a breach pages).
    """
    s = series.between(window_start, window_end)
    if s.empty:
        return None
    runs = runs_past(s.timestamps, s.values, threshold, above=above)
    run = trailing_run(runs, window_end, tolerance=1.5 * step)
    if run is None:
        return None
    # The value shown is the breach's latest point: with the run-end tolerance the very
    # last point may already be back under the threshold.
    latest = float(s.values[np.searchsorted(s.timestamps, run.end)])
    over = (run.mean - threshold) / abs(threshold) if threshold else 1.0
    cmp = ">" if above else "<"
    return Finding(
        kind=FindingKind.SLO_BREACH,
        entity=slo,
        model=model,
        value=latest,
        threshold=threshold,
        window_start=window_start,
        window_end=window_end,
        onset=run.start,
        score=float(min(1.0, 0.5 + abs(over))),
        direction=Direction.UP if above else Direction.DOWN,
        statistic=slo,
        message=(
            f"SLO {slo}: {latest:.4g}{unit} {cmp} {threshold:.4g}{unit} "
            f"for {run.duration / 60:.0f} min (peak {run.peak:.4g}{unit})"
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
