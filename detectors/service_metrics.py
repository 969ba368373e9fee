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
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from detectors.records import Direction, Finding, FindingKind, Series


@dataclass(frozen=True)
class MetricShiftParams:
    min_ratio: float = 3.0  # held level / baseline range edge needed for a finding
    min_points: int = 2  # samples in the window that must reach the level
    quantile: float = 1.0  # baseline range edge (1.0 = max, 0.0 = min)
    min_baseline: int = 5  # fewer baseline samples than this: no verdict
    abs_floor_rel: float = 0.01  # ratios are taken above 1 % of the metric's typical level
    down: bool = False  # also report drops; off by default: a drop is mostly lost traffic, a symptom


def _key(s: Series) -> tuple[str, str]:
    return s.name, s.labels.get("service") or s.labels.get("pod") or s.label_str()


def detect_service_metric_shifts(
    baseline: Sequence[Series],
    current: Sequence[Series],
    *,
    window_start: float,
    window_end: float,
    params: MetricShiftParams = MetricShiftParams(),
) -> list[Finding]:
    """METRIC_ANOMALY findings with `service` (and `pod` in evidence) for shifted series."""
    if window_end <= window_start:
        raise ValueError(f"window_end ({window_end}) must be after window_start ({window_start})")
    base: dict[tuple[str, str], np.ndarray] = {}
    for s in baseline:
        v = s.values[np.isfinite(s.values)]
        k = _key(s)
        base[k] = np.concatenate([base[k], v]) if k in base else v
    # A metric's typical level across services sets the floor under which ratios are noise.
    typical: dict[str, float] = {}
    for (name, _), v in base.items():
        if len(v):
            typical.setdefault(name, []).append(float(np.median(np.abs(v))))  # type: ignore[arg-type]
    floor = {k: params.abs_floor_rel * float(np.median(v)) + 1e-12 for k, v in typical.items()}  # type: ignore[arg-type]
    out: list[Finding] = []
    for s in current:
        w = s.between(window_start, window_end)
        ok = np.isfinite(w.values)
        v, t = w.values[ok], w.timestamps[ok]
        b = base.get(_key(s))
        if b is None or len(b) < params.min_baseline or len(v) == 0:
            continue
        need = min(params.min_points, len(v))
        fl = floor.get(s.name, 1e-12)
        hi = max(float(np.quantile(b, params.quantile)), fl)
        lo = max(float(np.quantile(b, 1.0 - params.quantile)), fl)
        held_hi = float(np.sort(v)[::-1][need - 1])
        held_lo = float(np.sort(v)[need - 1])
        up = max(held_hi, fl) / hi
        down = lo / max(held_lo, fl) if params.down else 0.0
        ratio, direction = (up, Direction.UP) if up >= down else (down, Direction.DOWN)
        if ratio < params.min_ratio:
            continue
        edge = hi if direction is Direction.UP else lo
        held = held_hi if direction is Direction.UP else held_lo
        hit = v >= edge * params.min_ratio if direction is Direction.UP else v <= edge / params.min_ratio
        conf = 1.0 - 1.0 / (len(b) + 1)  # how far a max of n samples can be trusted as "the range"
        score = conf * (1.0 - math.exp(-math.log2(ratio / params.min_ratio) / 1.5))
        service = s.labels.get("service")
        med = float(np.median(b))
        out.append(Finding(
            kind=FindingKind.METRIC_ANOMALY, entity=f"{service}: {s.name}", value=held,
            threshold=edge * params.min_ratio if direction is Direction.UP else edge / params.min_ratio,
            baseline=med, window_start=window_start, window_end=window_end,
            onset=float(t[hit][0]) if hit.any() else float(t[0]), score=score, service=service,
            direction=direction, statistic="range_ratio",
            message=(f"{service} {s.name} held {held:.4g} for {need}+ samples vs baseline "
                     f"{'max' if direction is Direction.UP else 'min'} {edge:.4g} (x{ratio:.1f}; median {med:.4g})"),
            evidence={"metric": s.name, "pod": s.labels.get("pod"), "ratio": ratio, "baseline_edge": edge,
                      "baseline_median": med, "samples_beyond": int(hit.sum()), "samples": int(len(v)),
                      "baseline_samples": int(len(b))},
        ))
    return out
