"""The canary judge: is the challenger worse than the champion, metric by metric?

Kayenta's way, with every number shown: for each metric, the per-step values of the
challenger and of the champion over the same window go into a one-sided Mann-Whitney U
test (is the challenger shifted the bad way?). A significant shift is only a failure
when it is also large: the effect is the Hodges-Lehmann shift (the median of all
pairwise differences, the estimator that goes with the U test) relative to the
champion's median, and it must reach `fail_effect`; a significant shift between
`marginal_effect` and `fail_effect` is marginal. An absolute rule ("error rate > 5 %")
can fail the challenger on its own value beside the comparison.

Too few points on either side is **inconclusive**, never a pass: the minimum is the
larger of the configured one and the smallest sample for which the U test can reach
`alpha` at all (with n points each, the smallest one-sided p-value is 1 / C(2n, n)).

Distribution metrics (a feature or the prediction) are judged by the drift detector's
effect size with the champion's window as the reference (see `distribution_verdict`).

Pure: values in, verdicts out; no clock, no I/O.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
from scipy.stats import mannwhitneyu

from detectors.records import Direction, json_safe

MAX_HL_PAIRS = 250_000  # above this many pairs the shift is estimated from an even subsample of each side


class Verdict(StrEnum):
    PASS = "pass"
    MARGINAL = "marginal"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"

    @property
    def rank(self) -> int:
        """Worst first when combining: fail > inconclusive > marginal > pass."""
        return {"pass": 0, "marginal": 1, "inconclusive": 2, "fail": 3}[self.value]


@dataclass(frozen=True)
class MetricRule:
    """How one metric is judged. `worse` is the direction that hurts (up for latency and
    errors, down for CTR). Effects are fractions of the champion's median (0.1 = 10 %)."""

    name: str
    worse: Direction = Direction.UP
    alpha: float = 0.05
    fail_effect: float = 0.1
    marginal_effect: float = 0.05
    min_points: int = 10
    fail_above: float | None = None  # absolute rule on the challenger's mean
    fail_below: float | None = None

    def __post_init__(self) -> None:
        if self.worse not in (Direction.UP, Direction.DOWN):
            raise ValueError(f"MetricRule {self.name!r}: worse must be 'up' or 'down', got {self.worse!r}")
        if not 0 < self.alpha < 1:
            raise ValueError(f"MetricRule {self.name!r}: alpha must be in (0, 1), got {self.alpha!r}")
        if not 0 <= self.marginal_effect <= self.fail_effect:
            raise ValueError(f"MetricRule {self.name!r}: expected 0 <= marginal_effect ({self.marginal_effect}) "
                             f"<= fail_effect ({self.fail_effect})")


@dataclass(frozen=True)
class MetricVerdict:
    """One metric's verdict with the numbers that made it: the medians of both sides, the
    shift and relative effect, the U test's p-value, and the thresholds they met."""

    metric: str
    verdict: Verdict
    reason: str
    champion: float | None = None  # median of the champion's per-step values
    challenger: float | None = None  # median of the challenger's
    challenger_mean: float | None = None
    effect: float | None = None  # relative shift, positive = worse
    shift: float | None = None  # Hodges-Lehmann estimate, challenger - champion
    rank_biserial: float | None = None  # the U test's own effect size in [-1, 1], positive = worse
    p_value: float | None = None
    n_champion: int = 0
    n_challenger: int = 0
    min_points: int = 0
    alpha: float = 0.05
    fail_effect: float | None = None
    marginal_effect: float | None = None
    fail_above: float | None = None
    fail_below: float | None = None
    kind: str = "metric"  # metric | distribution

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["verdict"] = str(self.verdict)
        return json_safe(d)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MetricVerdict:
        d = dict(d)
        d["verdict"] = Verdict(d["verdict"])
        return cls(**d)


@dataclass(frozen=True)
class CanaryVerdict:
    """All metrics of one cycle; the overall verdict is the worst of them."""

    metrics: list[MetricVerdict] = field(default_factory=list)

    @property
    def overall(self) -> Verdict:
        if not self.metrics:
            return Verdict.INCONCLUSIVE  # nothing compared is nothing known
        return max((m.verdict for m in self.metrics), key=lambda v: v.rank)

    @property
    def failed(self) -> list[MetricVerdict]:
        return [m for m in self.metrics if m.verdict == Verdict.FAIL]


def min_points_for(alpha: float) -> int:
    """The smallest n (points per side) for which a one-sided U test can reach `alpha`:
    its smallest p-value with n and n points is 1 / C(2n, n)."""
    n = 1
    while 1.0 / math.comb(2 * n, n) >= alpha:
        n += 1
    return n


def _finite(values: np.ndarray) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    return v[np.isfinite(v)]


def hodges_lehmann(challenger: np.ndarray, champion: np.ndarray) -> float:
    """Median of all pairwise differences challenger - champion (vectorised; even subsample
    of each sorted side when the pairs would not fit in memory)."""
    a, b = np.sort(challenger), np.sort(champion)
    while len(a) * len(b) > MAX_HL_PAIRS:
        a, b = (a[::2] if len(a) >= len(b) else a), (b[::2] if len(b) > len(a) else b)
    return float(np.median(a[:, None] - b[None, :]))


def judge_metric(rule: MetricRule, champion: np.ndarray, challenger: np.ndarray) -> MetricVerdict:
    """One metric's verdict from the per-step values of both versions over the same window."""
    base, cand = _finite(champion), _finite(challenger)
    need = max(rule.min_points, min_points_for(rule.alpha))
    common: dict[str, Any] = {
        "metric": rule.name, "n_champion": len(base), "n_challenger": len(cand), "min_points": need,
        "alpha": rule.alpha, "fail_effect": rule.fail_effect, "marginal_effect": rule.marginal_effect,
              "fail_above": rule.fail_above, "fail_below": rule.fail_below}
    if len(base) < need or len(cand) < need:
        short = "champion" if len(base) < need else "challenger"
        n = len(base) if short == "champion" else len(cand)
        return MetricVerdict(verdict=Verdict.INCONCLUSIVE, reason=f"{short}: {n} points < {need} needed",
                             champion=_median(base), challenger=_median(cand), challenger_mean=_mean(cand), **common)
    med_base, med_cand, mean_cand = float(np.median(base)), float(np.median(cand)), float(np.mean(cand))
    sign = 1.0 if rule.worse == Direction.UP else -1.0
    shift = hodges_lehmann(cand, base)
    effect = _relative(sign * shift, med_base)
    alternative = "greater" if rule.worse == Direction.UP else "less"
    u, p = mannwhitneyu(cand, base, alternative=alternative, method="asymptotic" if len(base) + len(cand) > 60
                        else "auto")
    rbc = sign * (2.0 * float(u) / (len(base) * len(cand)) - 1.0)
    numbers: dict[str, Any] = {
        "champion": med_base, "challenger": med_cand, "challenger_mean": mean_cand, "effect": effect,
        "shift": shift, "rank_biserial": rbc, "p_value": float(p)}
    absolute = _absolute_rule(rule, mean_cand)
    if absolute:
        return MetricVerdict(verdict=Verdict.FAIL, reason=absolute, **numbers, **common)
    significant = float(p) < rule.alpha
    if significant and effect >= rule.fail_effect:
        why = (f"challenger worse by {_pct(effect)} >= {_pct(rule.fail_effect)} "
               f"(U test p={float(p):.2g} < {rule.alpha:g})")
        return MetricVerdict(verdict=Verdict.FAIL, reason=why, **numbers, **common)
    if significant and effect >= rule.marginal_effect:
        why = (f"challenger worse by {_pct(effect)}: >= {_pct(rule.marginal_effect)}, < {_pct(rule.fail_effect)} "
               f"(U test p={float(p):.2g} < {rule.alpha:g})")
        return MetricVerdict(verdict=Verdict.MARGINAL, reason=why, **numbers, **common)
    if significant:
        why = f"shift {_pct(effect)} < {_pct(rule.marginal_effect)} (p={float(p):.2g})"
    else:
        why = f"no significant worsening (U test p={float(p):.2g} >= {rule.alpha:g}; effect {_pct(effect)})"
    return MetricVerdict(verdict=Verdict.PASS, reason=why, **numbers, **common)


def _absolute_rule(rule: MetricRule, mean: float) -> str:
    if rule.fail_above is not None and mean > rule.fail_above:
        return f"challenger {rule.name} {mean:.4g} > {rule.fail_above:g} (absolute rule)"
    if rule.fail_below is not None and mean < rule.fail_below:
        return f"challenger {rule.name} {mean:.4g} < {rule.fail_below:g} (absolute rule)"
    return ""


def _relative(worse_shift: float, base: float) -> float:
    """The shift as a fraction of the champion's level; a move off a zero level is infinite."""
    if base != 0:
        return worse_shift / abs(base)
    if worse_shift == 0:
        return 0.0
    return math.copysign(math.inf, worse_shift)


def _median(v: np.ndarray) -> float | None:
    return float(np.median(v)) if len(v) else None


def _mean(v: np.ndarray) -> float | None:
    return float(np.mean(v)) if len(v) else None


def _pct(x: float) -> str:
    return "inf" if math.isinf(x) else f"{100 * x:+.1f}%" if x < 0 else f"{100 * x:.1f}%"


def distribution_verdict(name: str, statistic: str, value: float | None, threshold: float, marginal: float,
                         n_champion: int, n_challenger: int, min_samples: int) -> MetricVerdict:
    """A feature's or the prediction's distribution, challenger against champion, judged
    by a drift effect size (PSI, Wasserstein, KS, JS) computed by the drift detector."""
    common: dict[str, Any] = {
        "metric": name, "n_champion": n_champion, "n_challenger": n_challenger, "min_points": min_samples,
        "fail_effect": threshold, "marginal_effect": marginal, "kind": "distribution", "effect": value}
    if value is None or n_champion < min_samples or n_challenger < min_samples:
        short = "champion" if n_champion < min_samples else "challenger"
        n = n_champion if short == "champion" else n_challenger
        return MetricVerdict(verdict=Verdict.INCONCLUSIVE, reason=f"{short}: {n} samples < {min_samples} needed",
                             **common)
    if math.isnan(value):  # it compares False with both limits, and would read as a pass
        return MetricVerdict(verdict=Verdict.INCONCLUSIVE, reason=f"{statistic} could not be computed", **common)
    if value > threshold:
        return MetricVerdict(verdict=Verdict.FAIL, reason=f"{statistic} {value:.3g} > {threshold:g}", **common)
    if value > marginal:
        return MetricVerdict(verdict=Verdict.MARGINAL, reason=f"{statistic} {value:.3g} > {marginal:g}", **common)
    return MetricVerdict(verdict=Verdict.PASS, reason=f"{statistic} {value:.3g} <= {marginal:g}", **common)
