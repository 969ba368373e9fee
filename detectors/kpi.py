"""Business KPI change against its baseline, in percent, in the direction that hurts."""
from __future__ import annotations

import numpy as np

from detectors.records import Direction, Finding, FindingKind, Series


def kpi_change(
    current: Series, baseline: Series, *, recent: float, window_end: float
) -> tuple[float, float, float] | None:
    """(current level, baseline level, change in %) or None when either side has no data.

    Levels are medians: one scrape glitch must not move a KPI verdict. The current
    level is taken over the last `recent` seconds so an old part of the window does
    not dilute a fresh drop.
    """
    cur = current.between(window_end - recent, window_end).values
    base = baseline.values
    cur, base = cur[~np.isnan(cur)], base[~np.isnan(base)]
    if len(cur) == 0 or len(base) == 0:
        return None
    c, b = float(np.median(cur)), float(np.median(base))
    if b == 0:
        return None
    return c, b, (c - b) / abs(b) * 100.0


def _onset(current: Series, level: float, bad_direction: Direction, window_end: float) -> float:
    """Start of the trailing stretch where the (median-smoothed) KPI sits past `level`."""
    v = current.values
    if len(v) >= 5:
        pad = np.pad(v, 2, mode="edge")
        v = np.nanmedian(np.lib.stride_tricks.sliding_window_view(pad, 5), axis=1)
    with np.errstate(invalid="ignore"):
        bad = v < level if bad_direction == Direction.DOWN else v > level
    if len(bad) == 0 or not bad[-1]:
        return window_end
    good_idx = np.flatnonzero(~bad)
    first_bad = good_idx[-1] + 1 if len(good_idx) else 0
    return float(current.timestamps[first_bad])


def detect_kpi_change(
    current: Series,
    baseline: Series,
    *,
    kpi: str,
    bad_direction: Direction,
    threshold_pct: float,
    model: str | None,
    window_start: float,
    window_end: float,
    recent: float,
) -> Finding | None:
    """A KPI_DROP finding when the KPI moved by at least `threshold_pct` the bad way.

    Movements in the harmless direction never produce a finding (CTR going up is
    not an incident).
    """
    change = kpi_change(current, baseline, recent=recent, window_end=window_end)
    if change is None:
        return None
    level, base, pct = change
    bad = pct <= -threshold_pct if bad_direction == Direction.DOWN else pct >= threshold_pct
    if not bad:
        return None
    edge = base * (1 - threshold_pct / 100) if bad_direction == Direction.DOWN else base * (1 + threshold_pct / 100)
    word = "dropped" if pct < 0 else "rose"
    return Finding(
        kind=FindingKind.KPI_DROP,
        entity=kpi,
        model=model,
        value=pct,
        threshold=-threshold_pct if bad_direction == Direction.DOWN else threshold_pct,
        baseline=base,
        window_start=window_start,
        window_end=window_end,
        onset=_onset(current.between(window_start, window_end), edge, bad_direction, window_end),
        score=float(min(1.0, abs(pct) / (4 * threshold_pct))),
        direction=bad_direction,
        statistic="kpi_change_pct",
        message=(
            f"KPI {kpi} {word} {abs(pct):.1f}% (now {level:.4g} vs baseline {base:.4g}; "
            f"threshold {threshold_pct:g}%)"
        ),
        evidence={"current": level, "baseline": base, "change_pct": pct, "series": current.label_str()},
    )
