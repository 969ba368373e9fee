"""Per pod/service metric shifts (CPU, memory, network, latency) against a baseline.

Each current series is compared with the baseline series of the same metric and
service (pods are renamed on redeploys; services are not).

Resource and latency metrics are heavy-tailed: a quiet baseline has a tiny spread,
so z-scores explode on ordinary jitter, and a latency percentile over few requests
jumps by orders of magnitude for no reason. The statistic here is therefore the
level the window *holds* (its `min_points`-th most extreme sample, so one scrape
glitch never counts) against the range the baseline itself reached (its `q`
quantile, by default its maximum): `held / baseline_high` upwards, `baseline_low /
held` downwards. A ratio of 2 means the service spent at least two samples at twice
anything seen in the normal window. With n baseline samples the chance that one
normal sample tops all of them is 1/(n+1), so the score also grows with n.

    detector = ServiceMetricsDetector()
    state = detector.fit(normal_period_series, t0, t1)   # per (metric, service) values and floors
    findings = detector.score(state, window_series, start, end)
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from detectors.base import check_window
from detectors.records import Direction, Finding, FindingKind, Series


@dataclass(frozen=True)
class ServiceMetricsParams:
    min_ratio: float = 3.0  # held level / baseline range edge needed for a finding
    min_points: int = 2  # samples in the window that must reach the level
    quantile: float = 1.0  # baseline range edge (1.0 = max, 0.0 = min)
    min_baseline: int = 5  # fewer baseline samples than this: no verdict
    abs_floor_rel: float = 0.01  # ratios are taken above 1 % of the metric's typical level
    down: bool = False  # also report drops; off by default: a drop is mostly lost traffic, a symptom


Key = tuple[str, str]  # (metric name, service or pod)


def _key(s: Series) -> Key:
    return s.name, s.labels.get("service") or s.labels.get("pod") or s.label_str()


@dataclass
class ServiceMetricsState:
    """The reference's finite values per (metric, service), and per metric the floor
    under which ratios are noise (a share of the metric's typical level across services)."""

    values: dict[Key, np.ndarray] = field(default_factory=dict)
    floor: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"series": [{"metric": k[0], "key": k[1], "values": v.tolist()} for k, v in self.values.items()],
                "floor": dict(self.floor)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ServiceMetricsState:
        try:
            values = {(str(x["metric"]), str(x["key"])): np.asarray(x["values"], dtype=np.float64)
                      for x in d["series"]}
            floor = {str(k): float(v) for k, v in d["floor"].items()}
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError("service metrics state: expected {'series': [{'metric', 'key', 'values'}], "
                             f"'floor': {{metric: number}}}} ({exc})") from exc
        return cls(values, floor)


@dataclass(frozen=True)
class ServiceMetricsDetector:
    params: ServiceMetricsParams = field(default_factory=ServiceMetricsParams)

    def fit(self, reference: Sequence[Series], start: float, end: float) -> ServiceMetricsState:
        """Every finite reference value per (metric, service): the range the service reached."""
        base: dict[Key, np.ndarray] = {}
        for s in reference:
            v = s.values[np.isfinite(s.values)]
            k = _key(s)
            base[k] = np.concatenate([base[k], v]) if k in base else v
        # A metric's typical level across services sets the floor under which ratios are noise.
        typical: dict[str, list[float]] = {}
        for (name, _), v in base.items():
            if len(v):
                typical.setdefault(name, []).append(float(np.median(np.abs(v))))
        floor = {k: self.params.abs_floor_rel * float(np.median(v)) + 1e-12 for k, v in typical.items()}
        return ServiceMetricsState(base, floor)

    def score(self, state: ServiceMetricsState, window: Sequence[Series], start: float, end: float) -> list[Finding]:
        """METRIC_ANOMALY findings with `service` (and `pod` in evidence) for shifted series."""
        check_window("ServiceMetricsDetector", start, end)
        out: list[Finding] = []
        for s in window:
            w = s.between(start, end)
            ok = np.isfinite(w.values)
            b = state.values.get(_key(s))
            if b is None or len(b) < self.params.min_baseline or not ok.any():
                continue
            f = _shift(self.params, s, w.values[ok], w.timestamps[ok], b, state.floor.get(s.name, 1e-12), start, end)
            if f is not None:
                out.append(f)
        return out


def _shift(p: ServiceMetricsParams, s: Series, v: np.ndarray, t: np.ndarray, b: np.ndarray, fl: float,
           start: float, end: float) -> Finding | None:
    """The finding for one current series `s` (finite values `v` at `t`) against its
    reference values `b`, or None when it held no level `min_ratio` past their range."""
    need = min(p.min_points, len(v))
    hi = max(float(np.quantile(b, p.quantile)), fl)
    lo = max(float(np.quantile(b, 1.0 - p.quantile)), fl)
    held_hi = float(np.sort(v)[::-1][need - 1])
    held_lo = float(np.sort(v)[need - 1])
    up = max(held_hi, fl) / hi
    down = lo / max(held_lo, fl) if p.down else 0.0
    ratio, direction = (up, Direction.UP) if up >= down else (down, Direction.DOWN)
    if ratio < p.min_ratio:
        return None
    edge = hi if direction is Direction.UP else lo
    held = held_hi if direction is Direction.UP else held_lo
    hit = v >= edge * p.min_ratio if direction is Direction.UP else v <= edge / p.min_ratio
    conf = 1.0 - 1.0 / (len(b) + 1)  # how far a max of n samples can be trusted as "the range"
    score = conf * (1.0 - math.exp(-math.log2(ratio / p.min_ratio) / 1.5))
    service = s.labels.get("service")
    med = float(np.median(b))
    return Finding(
        kind=FindingKind.METRIC_ANOMALY, entity=f"{service}: {s.name}", value=held,
        threshold=edge * p.min_ratio if direction is Direction.UP else edge / p.min_ratio,
        baseline=med, window_start=start, window_end=end,
        onset=float(t[hit][0]) if hit.any() else float(t[0]), score=score, service=service,
        direction=direction, statistic="range_ratio",
        message=(f"{service} {s.name} held {held:.4g} for {need}+ samples vs baseline "
                 f"{'max' if direction is Direction.UP else 'min'} {edge:.4g} (x{ratio:.1f}; median {med:.4g})"),
        evidence={"metric": s.name, "pod": s.labels.get("pod"), "ratio": ratio, "baseline_edge": edge,
                  "baseline_median": med, "samples_beyond": int(hit.sum()), "samples": int(len(v)),
                  "baseline_samples": int(len(b))},
    )
