"""Per pod/service metric shifts (CPU, memory, latency, availability ...) against a baseline.

Each current series is compared with the baseline of the same metric and service
(pods are renamed on redeploys; services are not).

The statistic is scale-free and needs no fixed number of normal samples: the level
the window *holds* (its `min_points`-th most extreme sample in the bad direction, so
one scrape glitch never counts) as a robust z-score against the baseline's median and
spread (1.4826 x MAD, or on the bad side the reach of the baseline's own tail, whichever
is larger: latency percentiles are heavy-tailed), never below `rel_spread` of the median's size nor
below a small share of the metric's typical level across services (a flat baseline
has no spread, and a ratio to nothing is noise). Which way is bad comes from what the
metric means (detectors/metric_meaning.py): availability down; latency, errors and
saturation up; both when the name does not say, at `unknown_weight`. With fewer than
`min_normal` normal samples the series' own history before the window (the case's
recent past) joins the baseline; with no baseline at all the series gives no verdict
and the report says so (`lacking`). When the series has recent history, the held level
is measured from its recent median and, by default (`level="both"`), must also be
unusual against the normal period's median: the weaker reading is the one reported.
A normal period at another level for every service of a metric alike (recorded at other
traffic, or long ago) is first carried to the present by the median factor its services
show between their recent history and it (`_regimes`: one vote per service, three at
least; never availability), and said in `lacking`.

    detector = ServiceMetricsDetector()
    state = detector.fit(normal_period_series, t0, t1)   # per (metric, service) values, per metric its typical level
    report = detector.assess(state, series, start, end)  # series may reach back before start
    report.findings, report.strength, report.lacking
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any, Literal, NamedTuple

import numpy as np

from detectors.base import check_window
from detectors.failed_requests import NAME as FAILED
from detectors.failed_requests import count_spread, failed_requests
from detectors.metric_meaning import MetricClass, direction_of, metric_class
from detectors.numbers import median
from detectors.records import Direction, Finding, FindingKind, Series

MAD_TO_SD = 1.4826


@dataclass(frozen=True)
class ServiceMetricsParams:
    min_z: float = 6.0  # robust z the held level must pass for a finding
    z_scale: float = 6.0  # z past min_z at which the score reaches 1 - 1/e
    min_points: int = 2  # samples in the window that must reach the level (fewer if the window has fewer)
    rel_spread: float = 0.1  # the spread is at least this share of the baseline median's size
    abs_floor_rel: float = 0.001  # ... and at least this share of the metric's typical level across services
    min_normal: int = 10  # fewer normal samples: the series' history before the window joins them
    # Where the level comes from: "normal" (the normal period's median), "recent" (the
    # median of the series' own history before the window, when it has any: a normal
    # period recorded long ago may sit at another level; the spread still comes from the
    # normal period, which has the samples to measure it), or "both": the held level
    # must be unusual against each, so a value the normal period itself holds (a latency
    # back at its usual bucket after a quiet half hour) is no evidence. (With fewer than
    # `min_normal` normal samples the recent history has joined them: "normal" is then
    # the median of both.)
    level: Literal["normal", "recent", "both"] = "both"
    # One-sided tail: the spread on the bad side is at least (q - median) / z(q) of the
    # baseline's `tail` quantile (upwards; 1 - tail downwards), so a heavy-tailed metric
    # (a latency percentile over few requests) is judged by how far its own tail reaches,
    # not by the narrow middle a MAD sees. 0 disables.
    tail: float = 0.9
    unknown_weight: float = 0.5  # score factor when the metric's name does not say which way is bad


Key = tuple[str, str]  # (metric name, service or pod)


def _key(s: Series) -> Key:
    return s.name, s.labels.get("service") or s.labels.get("pod") or s.label_str()


@dataclass
class ServiceMetricsState:
    """The reference's finite values per (metric, service), and per metric its typical
    level across services (`abs_floor_rel` of it is the floor of the spread, applied
    when scoring, so the fitted state does not depend on the setting)."""

    values: dict[Key, np.ndarray] = field(default_factory=dict)
    typical: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"series": [{"metric": k[0], "key": k[1], "values": v.tolist()} for k, v in self.values.items()],
                "typical": dict(self.typical)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ServiceMetricsState:
        try:
            values = {(str(x["metric"]), str(x["key"])): np.asarray(x["values"], dtype=np.float64)
                      for x in d["series"]}
            typical = {str(k): float(v) for k, v in d["typical"].items()}
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError("service metrics state: expected {'series': [{'metric', 'key', 'values'}], "
                             f"'typical': {{metric: number}}}} ({exc})") from exc
        return cls(values, typical)


@dataclass(frozen=True)
class ServiceMetricsDetector:
    params: ServiceMetricsParams = field(default_factory=ServiceMetricsParams)

    def fit(self, reference: Sequence[Series], start: float, end: float) -> ServiceMetricsState:
        """Every finite reference value per (metric, service): the range the service reached."""
        base: dict[Key, np.ndarray] = {}
        for s in failed_requests(reference):
            v = s.values[np.isfinite(s.values)]
            k = _key(s)
            base[k] = np.concatenate([base[k], v]) if k in base else v
        # A metric's typical level across services sets the floor of its spread.
        typical: dict[str, list[float]] = {}
        for (name, _), v in base.items():
            if len(v):
                typical.setdefault(name, []).append(float(np.median(np.abs(v))))
        return ServiceMetricsState(base, {k: float(np.median(v)) for k, v in typical.items()})

    def score(self, state: ServiceMetricsState, window: Sequence[Series], start: float, end: float) -> list[Finding]:
        """METRIC_ANOMALY findings with `service` (and `pod` in evidence) for shifted series."""
        return self.assess(state, window, start, end).findings

    def assess(self, state: ServiceMetricsState, series: Sequence[Series], start: float, end: float,
               meanings: Mapping[str, MetricClass] | None = None) -> ServiceMetricsReport:
        """Findings, each service's strongest robust z (bad direction, below threshold too:
        the ranking breaks ties with it) and what the baseline lacked. Points of a series
        before `start` are its recent history, used when the normal period is short.
        `meanings` (metric name -> class) overrides what the name says (a class given in
        the daemon's config); other metrics are classed by their name."""
        check_window("ServiceMetricsDetector", start, end)
        p = self.params
        report = ServiceMetricsReport()
        series = failed_requests(series)  # availability beside a request count: its failures
        classes = {name: (meanings or {}).get(name) or metric_class(name) for name in {s.name for s in series}}
        regime = _regimes(state, series, start, p.min_normal, classes)
        no_baseline: set[str] = set()
        short: set[str] = set()
        history_used = False
        for s in series:
            inside = (s.timestamps >= start) & (s.timestamps <= end) & np.isfinite(s.values)
            if not inside.any():
                continue
            b = state.values.get(_key(s), np.empty(0))
            before = (s.timestamps < start) & np.isfinite(s.values)
            recent = s.values[before]
            carried = 1.0
            if len(b) < p.min_normal:
                b = np.concatenate([b, recent])
                short.add(s.name)
                history_used |= len(recent) > 0
            elif s.name in regime and bool((b >= 0).all()):
                carried = regime[s.name]
                b = b * carried
            if not len(b):
                no_baseline.add(s.name)
                continue
            level = median(recent) if p.level != "normal" and len(recent) else median(b)
            service = s.labels.get("service") or _key(s)[1]
            floor = p.abs_floor_rel * state.typical.get(s.name, 0.0) * carried
            if s.name == FAILED:
                floor = max(floor, count_spread(b))
            base = _Baseline(values=b, level=level, floor=floor)
            f, z = _shift(p, s, classes[s.name], s.values[inside], s.timestamps[inside], base, start, end)
            report.strength[service] = max(report.strength.get(service, 0.0), z)
            if f is not None:
                report.findings.append(f)
        moved = {name: c for name, c in regime.items() if abs(math.log(c)) > math.log(REGIME_NOTED)}
        if moved:
            report.lacking.append("normal period at another level: " + ", ".join(
                f"{name} x{c:.2f}" for name, c in sorted(moved.items())[:5]) + " (every service's recent median)")
        if short:
            # The daemon reads its normal period just before the window: no other history to add.
            how = "recent history used" if history_used else f"fewer than {p.min_normal} samples"
            report.lacking.append(f"short normal period for {len(short)} metric(s): {how}")
        if no_baseline:
            report.lacking.append(f"no baseline for {len(no_baseline)} metric(s): {', '.join(sorted(no_baseline)[:5])}")
        return report


# The normal period's level per metric is carried to the present by the factor its
# services show between their recent history and it, when at least this many services
# (each with this many samples before the window) show one, bounded to this range; a
# factor beyond REGIME_NOTED is said in `lacking`.
REGIME_MIN_SERVICES = 3
REGIME_MIN_RECENT = 2
REGIME_BOUNDS = (0.1, 10.0)
REGIME_NOTED = 1.25


def _regimes(state: ServiceMetricsState, series: Sequence[Series], start: float, min_normal: int,
             classes: Mapping[str, MetricClass]) -> dict[str, float]:
    """Per metric, the median over its services of (recent median / normal median).

    A normal period recorded at other traffic, or long ago, sits at another level for every
    service of a metric alike: measured against it unscaled, each service's latency and
    requests look shifted, by the metric's share of that, not by a fault. The factor comes
    from history before the window only. Each service votes once (the median of its pods'
    ratios), so a service with many pods weighs as one; as a median over at least three
    services one service cannot set the factor (a fault under way before the window in
    most of them would be carried as a regime: the window is judged from there). A metric
    at 0 or negative in a service gives no ratio there; it is carried only when at least
    half of its services give one (error counts at 0 in most services are not carried by
    the few that are not). A metric bad when it falls (availability) sits at its ceiling
    and is never carried."""
    ratios: dict[str, dict[str, list[float]]] = {}
    seen: dict[str, set[str]] = {}
    for s in series:
        before = s.values[(s.timestamps < start) & np.isfinite(s.values)]
        if len(before) < REGIME_MIN_RECENT:  # always, in the daemon: its window has no history before it
            continue
        b = state.values.get(_key(s))
        if b is None or len(b) < min_normal or direction_of(classes[s.name]) is Direction.DOWN:
            continue
        service = s.labels.get("service") or _key(s)[1]
        seen.setdefault(s.name, set()).add(service)
        normal, recent = median(b), median(before)
        if normal > 0 and recent > 0 and float(b.min()) >= 0 and float(before.min()) >= 0:
            ratios.setdefault(s.name, {}).setdefault(service, []).append(math.log(recent / normal))
    lo, hi = REGIME_BOUNDS
    out: dict[str, float] = {}
    for name, by_service in ratios.items():
        if len(by_service) >= REGIME_MIN_SERVICES and 2 * len(by_service) >= len(seen[name]):
            votes = [median(np.asarray(v)) for v in by_service.values()]
            out[name] = min(max(math.exp(median(np.asarray(votes))), lo), hi)
    return out


@dataclass
class ServiceMetricsReport:
    findings: list[Finding] = field(default_factory=list)
    strength: dict[str, float] = field(default_factory=dict)  # service -> largest robust z (bad direction)
    lacking: list[str] = field(default_factory=list)  # what the baseline lacked, for the diagnosis


@dataclass(frozen=True)
class _Baseline:
    """What one current series is compared with."""
    values: np.ndarray  # the baseline samples, whose spread scales the z
    level: float  # the level a shift is measured from (baseline or recent median)
    floor: float  # the smallest spread allowed: a share of the metric's typical level


class _Reading(NamedTuple):
    """The held levels against one level: robust z and spread on each side."""

    z_up: float
    z_down: float
    spread_up: float
    spread_down: float
    level: float


def _shift(p: ServiceMetricsParams, s: Series, cls: MetricClass, v: np.ndarray, t: np.ndarray, base: _Baseline,
           start: float, end: float) -> tuple[Finding | None, float]:
    """The finding for one current series `s` of class `cls` (finite values `v` at `t`)
    against its baseline's level and spread (None below `min_z`), and its robust z in the
    bad direction."""
    b, fl = base.values, base.floor
    bad = direction_of(cls)
    b_med = median(b)
    mad = MAD_TO_SD * median(np.abs(b - b_med))
    tail_up = tail_down = 0.0
    if p.tail > 0.5 and len(b) > 1:
        z_q = float(NormalDist().inv_cdf(p.tail))
        hi_q, lo_q = np.quantile(b, [p.tail, 1.0 - p.tail])
        tail_up, tail_down = max(float(hi_q) - b_med, 0.0) / z_q, max(b_med - float(lo_q), 0.0) / z_q
    need = min(p.min_points, len(v))
    ordered = np.sort(v)
    held_hi, held_lo = float(ordered[-need]), float(ordered[need - 1])

    def against(med: float) -> _Reading:
        """The held levels read against the level `med`."""
        # A metric that falls when bad (availability) sits at its ceiling: its size says
        # nothing about its jitter, so only latencies, counts and levels get `rel_spread`.
        rel = p.rel_spread * abs(med) if bad is not Direction.DOWN else 0.0
        s_up, s_down = max(mad, tail_up, rel, fl, 1e-12), max(mad, tail_down, rel, fl, 1e-12)
        return _Reading((held_hi - med) / s_up if bad is not Direction.DOWN else -math.inf,
                        (med - held_lo) / s_down if bad is not Direction.UP else -math.inf, s_up, s_down, med)

    # Per direction, the weaker reading wins: against the level, and ("both") against the
    # normal period's own median too.
    readings = [against(base.level)] + ([against(b_med)] if p.level == "both" and b_med != base.level else [])
    r_up, r_down = min(readings, key=lambda r: r.z_up), min(readings, key=lambda r: r.z_down)
    z_up, z_down = r_up.z_up, r_down.z_down
    z, direction, held = (z_up, Direction.UP, held_hi) if z_up >= z_down else (z_down, Direction.DOWN, held_lo)
    spread, med = (r_up.spread_up, r_up.level) if direction is Direction.UP else (r_down.spread_down, r_down.level)
    if z < p.min_z:
        return None, max(z, 0.0)
    edge = med + p.min_z * spread if direction is Direction.UP else med - p.min_z * spread
    hit = v >= edge if direction is Direction.UP else v <= edge
    conf = 1.0 - 1.0 / (len(b) + 1)  # a spread from n samples: fewer samples, less trust
    weight = p.unknown_weight if cls is MetricClass.UNKNOWN else 1.0
    score = weight * conf * (1.0 - math.exp(-(z - p.min_z) / p.z_scale))
    service = s.labels.get("service")
    side = "above" if direction is Direction.UP else "below"
    # the levels a held value must pass on each side: the alert names the range it left
    band = [r_down.level - p.min_z * r_down.spread_down, r_up.level + p.min_z * r_up.spread_up]
    finding = Finding(
        kind=FindingKind.METRIC_ANOMALY, entity=f"{service}: {s.name}", value=held, threshold=edge,
        baseline=med, window_start=start, window_end=end,
        onset=float(t[hit][0]) if hit.any() else float(t[0]), score=score, service=service,
        direction=direction, statistic="robust_z",
        message=(f"{service} {s.name} held {held:.4g} for {need}+ samples, {side} {edge:.4g}, vs baseline median "
                 f"{med:.4g} (spread {spread:.3g}, z {z:+.1f} {direction} of at least {p.min_z:g}, {cls})"),
        evidence={"expected_band": band,
                  "metric": s.name, "pod": s.labels.get("pod"), "z": z, "class": str(cls),
                  "bad_direction": str(bad), "baseline_median": med, "baseline_spread": spread,
                  "samples_beyond": int(hit.sum()), "samples": int(len(v)), "baseline_samples": int(len(b))},
    )
    return finding, z
