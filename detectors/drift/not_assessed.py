"""Features the window could not judge for want of rows: one finding for the window, never
"no drift" and never one per feature (a quiet hour over 50 features read as 50 warnings)."""
from __future__ import annotations

from typing import Any

from detectors.drift.compare import FeatureDrift
from detectors.drift.quality import QualityWindow
from detectors.records import Finding, FindingKind

ENTITY = "drift"  # the entity of the window's finding when several features lack rows
LISTED_FEATURES = 10  # named in the message; the evidence keeps up to MAX_KEPT
MAX_KEPT = 200


def _span(counts: list[int]) -> str:
    lo, hi = min(counts), max(counts)
    return f"{lo:,}" if lo == hi else f"{lo:,}-{hi:,}"


def not_enough_data(short: list[FeatureDrift], min_samples: int, where: QualityWindow) -> list[Finding]:
    """One NO_DATA finding per side that lacks rows (almost always the current window): named by
    the feature when it is the only one, else by `ENTITY`, listing the features not assessed."""
    out = []
    for side in ("current", "reference"):
        mine = [fd for fd in short if (fd.n_current < min_samples) == (side == "current")]
        if mine:
            out.append(_finding(mine, side, min_samples, where))
    return out


def _finding(short: list[FeatureDrift], side: str, min_samples: int, where: QualityWindow) -> Finding:
    other = "reference" if side == "current" else "current"
    n = [fd.n_current if side == "current" else fd.n_reference for fd in short]
    m = [fd.n_reference if side == "current" else fd.n_current for fd in short]
    rows = f"{_span(n)} usable {side} rows < {min_samples:,} required ({_span(m)} {other} rows)"
    if len(short) == 1:
        fd = short[0]
        entity, message = fd.feature, f"not enough data on {fd.feature}: {rows}; drift not assessed"
        evidence: dict[str, Any] = {"quality": fd.quality}
    else:
        names = [fd.feature for fd in short]
        more = f", and {len(names) - LISTED_FEATURES:,} more" if len(names) > LISTED_FEATURES else ""
        entity = ENTITY
        message = (f"not enough data: {rows}; drift not assessed on {len(names):,} features "
                   f"({', '.join(names[:LISTED_FEATURES])}{more})")
        evidence = {"features_not_assessed": names[:MAX_KEPT], "features_not_assessed_count": len(names)}
    return Finding(
        kind=FindingKind.NO_DATA, entity=entity, value=float(max(n)), threshold=float(min_samples),
        window_start=where.start, window_end=where.end, onset=where.onset, score=0.0, model=where.model,
        statistic=f"n_{side}", message=message,
        evidence={"n_reference": max(fd.n_reference for fd in short), "n_current": max(fd.n_current for fd in short),
                  "min_samples": min_samples, **evidence},
    )
