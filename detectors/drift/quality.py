"""Data-quality findings that travel with drift: what is broken in the data, not how it moved.

A missing column, a jump in missing values, categories the model never saw, values
outside the reference range, text where numbers were expected, NaN/inf: each becomes a
DATA_QUALITY finding with the observed value next to its threshold, never an exception.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from scipy import stats

from detectors.drift.compare import FeatureDrift
from detectors.numbers import told_apart
from detectors.records import Finding, FindingKind


@dataclass(frozen=True)
class QualityThresholds:
    missing_rate_jump: float = 0.10  # absolute rise of the missing share over the reference
    new_category_share: float = 0.01  # share of current rows in categories the reference never had
    out_of_range_share: float = 0.01  # share of current values outside [reference min, max]
    # ... and that many are unlikely by chance: a new value falls outside the range of n
    # reference values with probability 2/(n+1), so a 200-row reference's range is left by 1 %
    # of an unchanged window. Beta-binomial tail of the count, with the reference's size.
    out_of_range_pvalue: float = 0.001
    nonfinite_share: float = 0.0  # share of +-inf above the reference's share
    type_mismatch_share: float = 0.0  # share of values that are not numbers in a numeric column


@dataclass(frozen=True)
class QualityWindow:
    """Where the findings belong: the model and the window, and the onset to report."""

    model: str | None
    start: float
    end: float
    onset: float


def _score(value: float, threshold: float) -> float:
    if threshold > 0:
        return value / (value + threshold)
    return 1.0 - math.exp(-20.0 * value)


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _pct_pair(value: float, threshold: float) -> tuple[str, str]:
    """A share and its threshold with as many decimals as it takes to tell them apart
    (1.03 % against 1 % printed "1.0% ... (> 1.0%)")."""
    return told_apart(value, threshold, lambda x, d: f"{100 * x:.{d}f}%", range(1, 8))


def quality_findings(drifts: list[FeatureDrift], *, thresholds: QualityThresholds,
                     window: QualityWindow) -> list[Finding]:
    """DATA_QUALITY findings for every feature, checks in a fixed order."""
    out: list[Finding] = []
    for fd in drifts:
        if fd.quality.get("column_missing"):
            alike = fd.quality.get("similar_column")
            out.append(_finding(window, fd, "column_missing", 1.0, 0.0,
                                f"column {fd.feature} ({fd.type} feature) is missing from the current window"
                                + (f" (it has {alike!r}: names must match exactly)" if alike else "")))
            continue
        if fd.quality.get("column_copies", 1) > 1:
            out.append(_finding(window, fd, "column_copies", fd.quality["column_copies"], 1.0,
                                f"column {fd.feature} ({fd.type} feature) appears {fd.quality['column_copies']} "
                                f"times in the current window: which one is the feature is unknown; not assessed"))
            continue
        if not fd.quality.get("rows_current", 0):
            continue
        for check in _CHECKS:
            f = check(fd, thresholds, window)
            if f is not None:
                out.append(f)
    return out


def _finding(w: QualityWindow, fd: FeatureDrift, statistic: str, value: float, threshold: float, message: str,
             baseline: float | None = None, **evidence: Any) -> Finding:
    return Finding(
        kind=FindingKind.DATA_QUALITY,
        entity=fd.feature,
        value=float(value),
        threshold=float(threshold),
        window_start=w.start,
        window_end=w.end,
        onset=w.onset,
        score=_score(float(value), float(threshold)),
        model=w.model,
        statistic=statistic,
        message=message,
        baseline=baseline,
        evidence={"feature": fd.feature, "type": fd.type, "quality": fd.quality, **evidence},
    )


def _missing_rate(fd: FeatureDrift, t: QualityThresholds, w: QualityWindow) -> Finding | None:
    q = fd.quality
    rows = q["rows_current"]
    ref_rate, cur_rate = q["missing_rate_reference"], q["missing_rate_current"]
    if not (math.isfinite(ref_rate) and cur_rate - ref_rate > t.missing_rate_jump):
        return None
    # As many decimals as it takes for the rise to read past the limit (10.04 % against none
    # printed "10.0% vs 0.0% (> +10.0 pts)", which reads as not past it).
    d = next((d for d in range(1, 8) if round(100 * cur_rate, d) - round(100 * ref_rate, d)
              > round(100 * t.missing_rate_jump, d)), 7)
    return _finding(w, fd, "missing_rate", cur_rate, ref_rate + t.missing_rate_jump,
                    f"missing rate {100 * cur_rate:.{d}f}% vs {100 * ref_rate:.{d}f}% in reference on {fd.feature} "
                    f"(> +{100 * t.missing_rate_jump:.{d}f} pts, {rows:,} current rows)",
                    baseline=ref_rate)


def _type_mismatch(fd: FeatureDrift, t: QualityThresholds, w: QualityWindow) -> Finding | None:
    q = fd.quality
    rows = q["rows_current"]
    mismatch = q.get("type_mismatch_current", 0) / rows
    if not mismatch > t.type_mismatch_share:
        return None
    return _finding(w, fd, "type_mismatch_share", mismatch, t.type_mismatch_share,
                    f"{q['type_mismatch_current']:,} of {rows:,} values on {fd.feature} are not numbers "
                    f"({_pct(mismatch)}); expected a numeric column")


def _nonfinite(fd: FeatureDrift, t: QualityThresholds, w: QualityWindow) -> Finding | None:
    q = fd.quality
    rows = q["rows_current"]
    # Both shares over all rows: over the reference's finite rows (n_reference) its share
    # read higher than it was (20 % inf as 25 %), and a real rise passed unreported.
    ref_rows = q.get("rows_reference") or fd.n_reference
    nonfinite = q.get("nonfinite_current", 0) / rows
    ref_nonfinite = q.get("nonfinite_reference", 0) / max(ref_rows, 1)
    if not nonfinite - ref_nonfinite > t.nonfinite_share:
        return None
    return _finding(w, fd, "nonfinite_share", nonfinite, ref_nonfinite + t.nonfinite_share,
                    f"{q['nonfinite_current']:,} infinite values on {fd.feature} ({_pct(nonfinite)} of "
                    f"{rows:,} rows) vs {_pct(ref_nonfinite)} in reference",
                    baseline=ref_nonfinite)


def _out_of_range(fd: FeatureDrift, t: QualityThresholds, w: QualityWindow) -> Finding | None:
    q = fd.quality
    oor = q.get("out_of_range_share", float("nan"))
    if not (math.isfinite(oor) and oor > t.out_of_range_share):
        return None
    chance = _out_of_range_chance(oor, fd.n_current, fd.n_reference)
    if chance >= t.out_of_range_pvalue:
        return None
    shown, limit = _pct_pair(oor, t.out_of_range_share)
    rmin, rmax, cmin, cmax = _range_digits(q["reference_min"], q["reference_max"],
                                           q.get("current_min", math.nan), q.get("current_max", math.nan))
    return _finding(w, fd, "out_of_range_share", oor, t.out_of_range_share,
                    f"{shown} of current values on {fd.feature} (> {limit}) are outside "
                    f"the reference range [{rmin}, {rmax}] (current [{cmin}, {cmax}])",
                    chance_pvalue=chance)


def _out_of_range_chance(share: float, n_current: int, n_reference: int) -> float:
    """How likely at least this many of `n_current` values fall outside the range of
    `n_reference` values drawn from the same distribution (ties make it rarer, not likelier)."""
    if n_reference < 2 or n_current < 1:
        return 0.0  # a range of one value says nothing about chance: judged by the share alone
    k = round(share * n_current)
    return float(stats.betabinom.sf(k - 1, n_current, 2, n_reference - 1))


def _range_digits(rmin: float, rmax: float, cmin: float, cmax: float) -> tuple[str, str, str, str]:
    """The two ranges with as many significant digits as it takes to show each bound of the
    window apart from the reference's where they differ: at four, an epoch-seconds feature
    read 'outside [1.7e+09, 1.7e+09] (current [1.7e+09, 1.7e+09])'."""
    spelt: tuple[str, str, str, str] = ("", "", "", "")
    for d in range(4, 18):
        spelt = (f"{rmin:.{d}g}", f"{rmax:.{d}g}", f"{cmin:.{d}g}", f"{cmax:.{d}g}")
        if (cmin == rmin or spelt[2] != spelt[0]) and (cmax == rmax or spelt[3] != spelt[1]):
            break
    return spelt


def _new_categories(fd: FeatureDrift, t: QualityThresholds, w: QualityWindow) -> Finding | None:
    q = fd.quality
    new_share = q.get("new_category_share", 0.0)
    if not new_share > t.new_category_share:
        return None
    names = list(q.get("new_categories", {}))
    shown = ", ".join(repr(n) for n in names[:5]) + (" ..." if q["new_category_count"] > 5 else "")
    share, limit = _pct_pair(new_share, t.new_category_share)
    return _finding(w, fd, "new_category_share", new_share, t.new_category_share,
                    f"{q['new_category_count']} new categor{'y' if q['new_category_count'] == 1 else 'ies'} "
                    f"on {fd.feature} in {share} of current rows (> {limit}): {shown}",
                    new_categories=q.get("new_categories", {}))


_CHECKS: tuple[Callable[[FeatureDrift, QualityThresholds, QualityWindow], Finding | None], ...] = (
    _missing_rate, _type_mismatch, _nonfinite, _out_of_range, _new_categories)
