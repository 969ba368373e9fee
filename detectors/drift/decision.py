"""From statistics to verdicts a person can check: the drift detector.

Effect sizes decide (KS statistic, normalised Wasserstein, PSI, Jensen-Shannon) against
a threshold. On big samples every p-value is tiny, so p-values only gate small ones:
below `small_sample` rows a feature must also be significant after Benjamini-Hochberg
across the features tested that way. Below `min_samples` usable rows the verdict is
"not enough data", one NO_DATA finding for the window (not_assessed.py), never a silent "no drift".

    detector = DriftDetector(DriftParams(features=(FeatureSpec("age"),), statistic="psi", threshold=0.1))
    profile = detector.fit(training_df, t0, t1)      # a ReferenceProfile: to_dict()/from_dict()
    findings = detector.score(profile, window_df, start, end)
    report = detector.assess(profile, window_df, start, end)  # findings + every feature's statistics
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from detectors.drift.categorical import CHANCE_DRAWS, chance_level, moved_text
from detectors.drift.compare import FeatureDrift, compare
from detectors.drift.modes import profile_reference
from detectors.drift.not_assessed import not_enough_data
from detectors.drift.numeric import PValueMode
from detectors.drift.profile import DEFAULT_QUANTILE_BINS, FeatureSpec, ProfileModeName, ReferenceProfile
from detectors.drift.quality import QualityThresholds, QualityWindow, quality_findings
from detectors.numbers import told_apart
from detectors.records import Direction, Finding, FindingKind

STATISTICS = ("psi", "wasserstein", "ks", "js")
# Wasserstein and KS need an order; a categorical feature is judged by Jensen-Shannon
# instead, which is Evidently's default for categorical columns at the same 0.1 scale.
CATEGORICAL_FALLBACK = "js"
TOP_MOVED = 5


@dataclass(frozen=True)
class DriftParams:
    """What to profile and how to judge it (policy values from config)."""

    features: tuple[FeatureSpec, ...] = ()
    statistic: str = "psi"
    threshold: float = 0.1
    min_samples: int = 100
    model: str | None = None
    prediction_column: str | None = None  # its drift is PREDICTION_DRIFT
    small_sample: int = 1000  # below this many rows, p-values gate the verdict (BH)
    alpha: float = 0.05
    pvalues: PValueMode = "auto"
    quality: QualityThresholds = field(default_factory=QualityThresholds)
    quantile_bins: int = DEFAULT_QUANTILE_BINS
    mode: ProfileModeName = "exact"
    workers: int = 1

    def __post_init__(self) -> None:
        if self.statistic not in STATISTICS:
            raise ValueError(f"DriftParams: statistic must be one of {STATISTICS}, got {self.statistic!r}")
        if not (self.threshold > 0 and math.isfinite(self.threshold)):
            raise ValueError(f"DriftParams: threshold must be a positive number, got {self.threshold!r}")


@dataclass
class DriftReport:
    """One window's findings and the statistics of every feature, drifted or not."""

    findings: list[Finding]
    features: list[FeatureDrift]


@dataclass(frozen=True)
class DriftDetector:
    params: DriftParams = field(default_factory=DriftParams)

    def fit(self, reference: pd.DataFrame, start: float = 0.0, end: float = 0.0) -> ReferenceProfile:
        """Profile the reference (training data); `start`/`end` are not needed: rows carry no time."""
        p = self.params
        return profile_reference(reference, list(p.features), quantile_bins=p.quantile_bins, mode=p.mode,
                                 workers=p.workers)

    def score(self, state: ReferenceProfile, window: pd.DataFrame, start: float, end: float) -> list[Finding]:
        return self.assess(state, window, start, end).findings

    def assess(self, state: ReferenceProfile, window: pd.DataFrame, start: float, end: float) -> DriftReport:
        """Findings for one window (drift per feature, not-enough-data, data quality) and
        every feature's statistics. Onsets are the window start (see drift_onset.py)."""
        p = self.params
        if p.prediction_column is not None and p.prediction_column not in {f.name for f in state.features}:
            raise ValueError(
                f"DriftDetector: prediction_column {p.prediction_column!r} is not a profiled feature; "
                f"profile it with the features ({[f.name for f in state.features][:10]})"
            )
        drifts = compare(state, window, min_samples=p.min_samples, pvalues=p.pvalues, exact_below=p.small_sample)
        verdicts = _Verdicts.of(drifts, p)
        where = QualityWindow(model=p.model, start=start, end=end, onset=start)
        findings: list[Finding] = []
        short = []  # not enough rows: one finding for all of them (not_assessed.py)
        for fd in drifts:
            if fd.quality.get("column_missing") or fd.quality.get("column_copies", 1) > 1:
                continue  # reported once, as data quality
            if not fd.enough_data:
                short.append(fd)
            elif fd.feature not in verdicts.ratio:  # its statistic is NaN/inf: no threshold judges that
                findings.append(_not_computable(fd, statistic_for(fd, p.statistic), where))
            elif verdicts.drifted(fd):
                findings.append(_drift_finding(fd, verdicts, p, where))
        findings[:0] = not_enough_data(short, p.min_samples, where)
        findings.extend(quality_findings(drifts, thresholds=p.quality, window=where))
        return DriftReport(findings, drifts)


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
    if abs(x) >= 1e6:  # ".2f" of 8e199 printed 200 digits
        return f"{x:.2e}"
    return f"{x:.2f}" if abs(x) >= 0.01 else f"{x:.2g}"


def _fmt_pair(value: float, threshold: float) -> tuple[str, str]:
    """Value and threshold with as many digits as it takes to tell them apart: 0.1604
    against 0.1593 printed "0.16 > 0.16"."""
    a, b = _fmt(value), _fmt(threshold)
    if a != b or value == threshold or not math.isfinite(value):
        return a, b
    return told_apart(value, threshold, lambda x, d: f"{x:.{d}g}", range(3, 18))


def _mean_pair(current: float, reference: float) -> tuple[str, str]:
    """Two means with as many significant digits as it takes to tell them apart (4 at least)."""
    if current == reference:
        return f"{current:.4g}", f"{reference:.4g}"
    return told_apart(current, reference, lambda x, d: f"{x:.{d}g}", range(4, 18))


def _pvalue_key(fd: FeatureDrift) -> str:
    return "ks_pvalue" if fd.type == "numeric" else "chi2_pvalue"


@dataclass
class _Verdicts:
    """Which assessed features moved past the threshold, their rank, and the p-value gate."""

    statistic: str
    assessed: int  # features with enough data and a finite statistic
    ratio: dict[str, float]  # statistic / threshold
    rank: dict[str, int]
    significant: dict[str, bool]  # only for features gated by their p-value
    top_moved: list[dict[str, Any]]
    # statistic >= threshold: at the threshold is drift, as Evidently's PSI, JS and Wasserstein
    # tests (the drift report's page) read it. Compared as values, not as ratio > 1: at exactly
    # the threshold the page said "Detected" and Vigil said nothing.
    reached: dict[str, bool] = field(default_factory=dict)
    # A categorical feature past the threshold must also be past what no change reads at its
    # size (categorical.chance_level): many categories over few rows are noise of 0.2 and more.
    chance: dict[str, float] = field(default_factory=dict)

    @classmethod
    def of(cls, drifts: list[FeatureDrift], p: DriftParams) -> _Verdicts:
        s = p.statistic
        assessed = [fd for fd in drifts if fd.enough_data and math.isfinite(fd.statistics[statistic_for(fd, s)])]
        ratio = {fd.feature: fd.statistics[statistic_for(fd, s)] / p.threshold for fd in assessed}
        ranked = sorted(assessed, key=lambda fd: -ratio[fd.feature])
        gated = [fd for fd in assessed if min(fd.n_current, fd.n_reference) < p.small_sample]
        rejected = benjamini_hochberg(np.array([fd.statistics[_pvalue_key(fd)] for fd in gated], dtype=float),
                                      p.alpha)
        v = cls(s, len(assessed), ratio, {fd.feature: i + 1 for i, fd in enumerate(ranked)},
                {fd.feature: bool(r) for fd, r in zip(gated, rejected, strict=True)}, [],
                {fd.feature: fd.statistics[statistic_for(fd, s)] >= p.threshold for fd in assessed})
        v.chance = {fd.feature: chance_level(fd.reference_counts, fd.n_current, statistic_for(fd, s),
                                             stop_at=fd.statistics[statistic_for(fd, s)])
                    for fd in assessed if fd.reference_counts is not None and v.reached[fd.feature]}
        v.top_moved = [
            {"feature": fd.feature, "statistic": statistic_for(fd, s),
             "value": fd.statistics[statistic_for(fd, s)], "drifted": v.drifted(fd)}
            for fd in ranked[:TOP_MOVED]
        ]
        return v

    def drifted(self, fd: FeatureDrift) -> bool:
        value = fd.statistics[statistic_for(fd, self.statistic)]
        return (self.reached[fd.feature] and self.significant.get(fd.feature, True)
                and value > self.chance.get(fd.feature, -math.inf))


def _drift_finding(fd: FeatureDrift, v: _Verdicts, p: DriftParams, where: QualityWindow) -> Finding:
    name = statistic_for(fd, p.statistic)
    value = fd.statistics[name]
    evidence: dict[str, Any] = {
        "statistics": dict(fd.statistics),
        "statistic_used": name,
        "n_reference": fd.n_reference,
        "n_current": fd.n_current,
        "rank": v.rank[fd.feature],
        "features_assessed": v.assessed,
        "top_moved": v.top_moved,
        "pvalue_method": fd.pvalue_method,
        "quality": fd.quality,
    }
    shown, limit = _fmt_pair(value, p.threshold)
    msg = (
        f"{name} {shown} {'>' if value > p.threshold else '>='} {limit} on {fd.feature} "
        f"({fd.n_current:,} current vs {fd.n_reference:,} reference rows)"
    )
    mr, mc = fd.quality.get("mean_reference"), fd.quality.get("mean_current")
    if mr is not None and mc is not None and math.isfinite(mr) and math.isfinite(mc):
        cur, ref = _mean_pair(mc, mr)
        msg += f"; mean {cur} vs {ref} in the reference"
    if moved := fd.quality.get("moved_categories"):  # which categories, not only that the feature moved
        evidence["moved_categories"] = moved
        msg += f"; {fd.feature}: {moved_text(moved)}"
    if fd.feature in v.significant:
        pkey = _pvalue_key(fd)
        evidence["pvalue_gate"] = {"pvalue": fd.statistics[pkey], "test": pkey, "alpha": p.alpha, "method": "BH"}
        msg += f"; {pkey.split('_')[0]} p={fd.statistics[pkey]:.2g} significant after BH at {p.alpha:g}"
    level = v.chance.get(fd.feature)
    if level is not None:
        evidence["chance_level"] = level
    if level is not None and level >= p.threshold / 2 and fd.reference_counts is not None:  # near the threshold
        msg += (f"; no change reads up to {_fmt(level)} at {fd.n_current:,} rows over "
                f"{len(fd.reference_counts):,} categories (largest of up to {CHANCE_DRAWS} draws)")
    return Finding(
        kind=FindingKind.PREDICTION_DRIFT if fd.feature == p.prediction_column else FindingKind.FEATURE_DRIFT,
        entity=fd.feature,
        value=float(value),
        threshold=float(p.threshold),
        window_start=where.start,
        window_end=where.end,
        onset=where.onset,
        score=float(value / (value + p.threshold)),
        model=p.model,
        direction=_direction(fd),
        baseline=None,
        statistic=name,
        message=msg,
        evidence=evidence,
    )


def _direction(fd: FeatureDrift) -> Direction | None:
    mr, mc = fd.quality.get("mean_reference"), fd.quality.get("mean_current")
    if mr is None or mc is None or not (math.isfinite(mr) and math.isfinite(mc)) or mr == mc:
        return None
    return Direction.UP if mc > mr else Direction.DOWN


def _not_computable(fd: FeatureDrift, statistic: str, where: QualityWindow) -> Finding:
    """Enough rows, but the chosen statistic came out NaN or inf (values near the float
    limit overflow it): drift is unknown, and says so rather than passing as "no drift"."""
    value = fd.statistics[statistic]
    return Finding(
        kind=FindingKind.NO_DATA, entity=fd.feature, value=0.0, threshold=0.0, window_start=where.start,
        window_end=where.end, onset=where.onset, score=0.0, model=where.model, statistic=statistic,
        message=(f"{statistic} on {fd.feature} is {value} (values too large for float arithmetic, current "
                 f"[{fd.quality.get('current_min', math.nan):.4g}, {fd.quality.get('current_max', math.nan):.4g}]); "
                 f"drift not assessed"),
        evidence={"statistics": dict(fd.statistics), "n_reference": fd.n_reference, "n_current": fd.n_current,
                  "quality": fd.quality},
    )
