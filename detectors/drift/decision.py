"""From statistics to verdicts a person can check.

Effect sizes decide (KS statistic, normalised Wasserstein, PSI, Jensen-Shannon) against
a threshold. On big samples every p-value is tiny, so p-values only gate small ones:
below `small_sample` rows a feature must also be significant after Benjamini-Hochberg
across the features tested that way. Below `min_samples` usable rows the verdict is
"not enough data", a NO_DATA finding, never a silent "no drift".
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from detectors.drift.compare import FeatureDrift, compare
from detectors.drift.numeric import PValueMode
from detectors.drift.profile import ReferenceProfile
from detectors.drift.quality import QualityThresholds, quality_findings
from detectors.records import Direction, Finding, FindingKind

STATISTICS = ("psi", "wasserstein", "ks", "js")
# Wasserstein and KS need an order; a categorical feature is judged by Jensen-Shannon
# instead, which is Evidently's default for categorical columns at the same 0.1 scale.
CATEGORICAL_FALLBACK = "js"
TOP_MOVED = 5


def statistic_for(fd: FeatureDrift, statistic: str) -> str:
    return statistic if statistic in fd.statistics else CATEGORICAL_FALLBACK


def benjamini_hochberg(pvalues: np.ndarray, alpha: float) -> np.ndarray:
    """Which hypotheses BH rejects at false discovery rate alpha."""
    m = len(pvalues)
    if m == 0:
        return np.zeros(0, dtype=bool)
    p = np.where(np.isnan(pvalues), 1.0, pvalues)
    order = np.argsort(p, kind="stable")
    below = p[order] <= alpha * np.arange(1, m + 1) / m
    reject = np.zeros(m, dtype=bool)
    if below.any():
        k = int(np.flatnonzero(below).max())
        reject[order[: k + 1]] = True
    return reject


def _fmt(x: float) -> str:
    if not math.isfinite(x):
        return str(x)
    return f"{x:.2f}" if abs(x) >= 0.01 else f"{x:.2g}"


def _pvalue_key(fd: FeatureDrift) -> str:
    return "ks_pvalue" if fd.type == "numeric" else "chi2_pvalue"


def detect_drift(
    profile: ReferenceProfile,
    current: pd.DataFrame,
    *,
    statistic: str,
    threshold: float,
    min_samples: int,
    model: str | None,
    window_start: float,
    window_end: float,
    onset: float | None = None,
    prediction_column: str | None = None,
    small_sample: int = 1000,
    alpha: float = 0.05,
    pvalues: PValueMode = "auto",
    quality: QualityThresholds | None = None,
) -> tuple[list[Finding], list[FeatureDrift]]:
    """Findings for one window: drift per feature, not-enough-data, data quality."""
    if statistic not in STATISTICS:
        raise ValueError(f"detect_drift: statistic must be one of {STATISTICS}, got {statistic!r}")
    if not (threshold > 0 and math.isfinite(threshold)):
        raise ValueError(f"detect_drift: threshold must be a positive number, got {threshold!r}")
    if prediction_column is not None and prediction_column not in {f.name for f in profile.features}:
        raise ValueError(
            f"detect_drift: prediction_column {prediction_column!r} is not a profiled feature; "
            f"profile it with the features ({[f.name for f in profile.features][:10]})"
        )
    onset = window_start if onset is None else onset
    drifts = compare(profile, current, min_samples=min_samples, pvalues=pvalues)
    findings: list[Finding] = []

    assessed = [fd for fd in drifts if fd.enough_data and math.isfinite(fd.statistics[statistic_for(fd, statistic)])]
    ratio = {fd.feature: fd.statistics[statistic_for(fd, statistic)] / threshold for fd in assessed}
    ranked = sorted(assessed, key=lambda fd: -ratio[fd.feature])
    rank = {fd.feature: i + 1 for i, fd in enumerate(ranked)}

    gated = [fd for fd in assessed if min(fd.n_current, fd.n_reference) < small_sample]
    rejected = benjamini_hochberg(np.array([fd.statistics[_pvalue_key(fd)] for fd in gated], dtype=float), alpha)
    significant = {fd.feature: bool(r) for fd, r in zip(gated, rejected)}

    def drifted(fd: FeatureDrift) -> bool:
        return ratio[fd.feature] > 1.0 and significant.get(fd.feature, True)

    top_moved = [
        {
            "feature": fd.feature,
            "statistic": statistic_for(fd, statistic),
            "value": fd.statistics[statistic_for(fd, statistic)],
            "drifted": drifted(fd),
        }
        for fd in ranked[:TOP_MOVED]
    ]

    for fd in drifts:
        if fd.quality.get("column_missing"):
            continue  # reported once, as data quality
        if not fd.enough_data:
            findings.append(_no_data(fd, min_samples, model, window_start, window_end, onset))
            continue
        if fd.feature not in ratio or not drifted(fd):
            continue
        name = statistic_for(fd, statistic)
        value = fd.statistics[name]
        evidence: dict[str, Any] = {
            "statistics": dict(fd.statistics),
            "statistic_used": name,
            "n_reference": fd.n_reference,
            "n_current": fd.n_current,
            "rank": rank[fd.feature],
            "features_assessed": len(assessed),
            "top_moved": top_moved,
            "pvalue_method": fd.pvalue_method,
            "quality": fd.quality,
        }
        msg = (
            f"{name} {_fmt(value)} > {_fmt(threshold)} on {fd.feature} "
            f"({fd.n_current:,} current vs {fd.n_reference:,} reference rows)"
        )
        if fd.feature in significant:
            pkey = _pvalue_key(fd)
            evidence["pvalue_gate"] = {"pvalue": fd.statistics[pkey], "test": pkey, "alpha": alpha, "method": "BH"}
            msg += f"; {pkey.split('_')[0]} p={fd.statistics[pkey]:.2g} significant after BH at {alpha:g}"
        is_pred = fd.feature == prediction_column
        findings.append(
            Finding(
                kind=FindingKind.PREDICTION_DRIFT if is_pred else FindingKind.FEATURE_DRIFT,
                entity=fd.feature,
                value=float(value),
                threshold=float(threshold),
                window_start=window_start,
                window_end=window_end,
                onset=onset,
                score=float(value / (value + threshold)),
                model=model,
                direction=_direction(fd),
                baseline=None,
                statistic=name,
                message=msg,
                evidence=evidence,
            )
        )

    findings.extend(
        quality_findings(
            drifts,
            thresholds=quality or QualityThresholds(),
            model=model,
            window_start=window_start,
            window_end=window_end,
            onset=onset,
        )
    )
    return findings, drifts


def _direction(fd: FeatureDrift) -> Direction | None:
    mr, mc = fd.quality.get("mean_reference"), fd.quality.get("mean_current")
    if mr is None or mc is None or not (math.isfinite(mr) and math.isfinite(mc)) or mr == mc:
        return None
    return Direction.UP if mc > mr else Direction.DOWN


def _no_data(
    fd: FeatureDrift, min_samples: int, model: str | None, window_start: float, window_end: float, onset: float
) -> Finding:
    side = "current" if fd.n_current < min_samples else "reference"
    n = fd.n_current if side == "current" else fd.n_reference
    return Finding(
        kind=FindingKind.NO_DATA,
        entity=fd.feature,
        value=float(n),
        threshold=float(min_samples),
        window_start=window_start,
        window_end=window_end,
        onset=onset,
        score=0.0,
        model=model,
        statistic=f"n_{side}",
        message=(
            f"not enough data on {fd.feature}: {n:,} usable {side} rows < {min_samples:,} required "
            f"({fd.n_current:,} current vs {fd.n_reference:,} reference); drift not assessed"
        ),
        evidence={"n_reference": fd.n_reference, "n_current": fd.n_current, "quality": fd.quality},
    )
