"""A drop in performance against the reference period: the finding, with its numbers.

The newest window of each version whose labels suffice is judged on its realised
figures; a newer window still waiting for labels is judged on its estimate (CBPE), as a
warning that says it is an estimate. A metric dropped when it moved the bad way by at
least `drop_pct` percent of its reference value (a classification metric fell, a
regression error grew).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from detectors.performance.noise import chance
from detectors.performance.realised import LOWER_IS_BETTER
from detectors.performance.windows import WindowPerformance
from detectors.records import Direction, Finding, FindingKind


@dataclass(frozen=True)
class JudgeParams:
    model: str
    drop_pct: float = 10.0
    judge_estimates: bool = True
    alpha: float = 0.01  # a drop (realised or estimated) must be this unlikely by chance, across the window's figures


def change_pct(metric: str, value: float, reference: float) -> float | None:
    """Signed change in percent of the reference; None when the reference is 0."""
    if reference == 0:
        return None
    return (value - reference) / abs(reference) * 100.0


def is_drop(metric: str, change: float, drop_pct: float) -> bool:
    return change >= drop_pct if metric in LOWER_IS_BETTER else change <= -drop_pct


def _hours(seconds: float | None) -> str:
    return "unknown" if seconds is None else f"{seconds / 3600:.1f} h"


def _finding(w: WindowPerformance, metric: str, values: tuple[float, float, float], basis: str,
             params: JudgeParams, p: float | None = None) -> Finding:
    value, ref, change = values
    worse_up = metric in LOWER_IS_BETTER
    limit = params.drop_pct if worse_up else -params.drop_pct
    how = (f"on {w.labelled} labels (coverage {w.coverage:.0%}, median label delay {_hours(w.delay_median_s)})"
           if basis == "realised" else f"estimated by CBPE on {w.predictions} predictions, labels not in yet")
    beyond = "" if p is None else f"; chance of a window this much worse p={p:.2g}"
    bias = w.label_bias if basis == "realised" else None
    if bias:  # a warning, not a page (alerts/policy.py): the labels read one class's figure
        beyond += f"; a warning, not a page: {bias['text']}"
    return Finding(
        kind=FindingKind.PERFORMANCE_DROP, entity=metric, value=change, threshold=limit,
        window_start=w.start, window_end=w.end, onset=w.start,
        score=min(1.0, abs(change) / (2 * params.drop_pct)), model=params.model,
        direction=Direction.UP if worse_up else Direction.DOWN, baseline=ref, statistic=f"{metric}_change_pct",
        message=(f"{basis} {metric} {value:.4g} vs {ref:.4g} in the reference ({change:+.1f}%, limit {limit:+g}%) "
                 f"{how}, version {w.version}{beyond}"),
        evidence={"basis": basis, "metric": metric, "value": value, "reference": ref, "version": w.version,
                  "labelled": w.labelled, "predictions": w.predictions, "coverage": w.coverage,
                  "delay_median_s": w.delay_median_s, "realised": w.realised, "estimated": w.estimated,
                  **({} if p is None else {"chance_pvalue": p}), **({"label_bias": bias} if bias else {})})


def _drops(w: WindowPerformance, figures: dict[str, float | None], reference: dict[str, float | None],
           basis: str, params: JudgeParams) -> list[Finding]:
    """Figures `drop_pct` worse than the reference, and beyond their own noise (noise.py; an
    estimate's as the realised figure it stands for), at `alpha` shared by the window's judged figures."""
    judged = {m: (v, r) for m, v in figures.items() if v is not None and (r := reference.get(m)) is not None}
    out = []
    for metric, (value, ref) in judged.items():
        change = change_pct(metric, value, ref)
        if change is None or not is_drop(metric, change, params.drop_pct):
            continue
        p = chance(metric, value, ref, (w.support if basis == "realised" else w.estimate_support).get(metric))
        if p is not None and p >= params.alpha / len(judged):
            continue  # a window of this size moves this far by chance
        out.append(_finding(w, metric, (value, ref, change), basis, params, p))
    return out


def judge(windows: list[WindowPerformance], reference: dict[str, float | None], params: JudgeParams
          ) -> list[Finding]:
    """Findings for the newest judged window of each version (`windows` oldest first)."""
    out: list[Finding] = []
    for version in dict.fromkeys(w.version for w in windows):
        mine = [w for w in windows if w.version == version]
        realised = [w for w in mine if w.realised is not None]
        if realised:
            w = realised[-1]
            out.extend(_drops(w, w.realised or {}, reference, "realised", params))
        if not params.judge_estimates:
            continue
        newer = [w for w in mine if w.estimated is not None and w.realised is None
                 and (not realised or w.start > realised[-1].start)]
        if newer:
            w = newer[-1]
            out.extend(_drops(w, w.estimated or {}, reference, "estimated", params))
    return out


def labels_overdue(windows: list[WindowPerformance], t: float, min_labels: int, start: float | None = None
                   ) -> str | None:
    """Why the labels look stopped, or None. A window is overdue when it ended longer ago than
    the slowest window's median label delay in the horizon, would have had `min_labels` labels
    at the coverage the earlier windows got, yet has none, and no newer window has a label
    either. Unsaid, the realised figures shown stayed those of the last labelled window (a
    stale "no degradation"), and a regression model, with no estimate, said nothing at all. `start`: the horizon's.
    Medians, not the slowest label: one correction sent 12 h after its prediction (its delay
    counts from the correction) kept a dead label feed unsaid for 12 h more."""
    labelled = [w for w in windows if w.labelled and w.delay_median_s is not None]
    if not labelled:
        return _none_in_horizon(windows, min_labels, start)
    slowest = max(float(w.delay_median_s or 0.0) for w in labelled)
    coverage = sum(w.labelled for w in labelled) / sum(w.predictions for w in labelled)
    last = max(w.start for w in labelled)
    overdue = [w for w in windows if w.start > last and w.end + slowest <= t
               and w.predictions * coverage >= min_labels]
    if not overdue:
        return None
    since = datetime.fromtimestamp(min(w.start for w in overdue), UTC).strftime("%Y-%m-%d %H:%M UTC")
    n = sum(w.predictions for w in overdue)
    return (f"no label for the {n} predictions since {since} ({len(overdue)} window(s)), though labels land "
            f"within {_hours(slowest)} at {coverage:.0%} coverage (the slowest window's median label delay): labels "
            "stopped arriving? The realised figures shown are those of the last labelled window")


def _none_in_horizon(windows: list[WindowPerformance], min_labels: int, start: float | None) -> str | None:
    """Why not one label arrived in the whole horizon though predictions were logged all
    through it, or None (a model serving for less than the horizon may still wait for its
    first labels). Once the last labelled window left the horizon, the stop went unsaid and
    its warning resolved: an all clear while labels had not arrived for days."""
    if start is None or not windows:
        return None
    first = min(windows, key=lambda w: w.start)
    n = sum(w.predictions for w in windows)
    if first.start > start + (first.end - first.start) or n < min_labels:
        return None
    since = datetime.fromtimestamp(first.start, UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (f"no label for any of the {n} predictions of the horizon (since {since}): labels stopped arriving? "
            "(or they land later than performance.horizon) No realised figure is shown")
