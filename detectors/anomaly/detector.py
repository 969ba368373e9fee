"""The online anomaly detector in the detector contract: fit warms a state, score advances it.

    detector = OnlineAnomalyDetector(AnomalyParams(threshold=0.9, direction=Direction.DOWN, model="ranker"))
    state = detector.fit(history, t0, t1)           # or detector.new_state() for a cold start
    findings = detector.score(state, window, start, end)   # advances `state`: store state.to_dict()
    scores = detector.score_points(state, ts, xs)   # per-point scores in [0, 1] (benchmarks)

A volume (the requests behind each point of a ratio or per-request statistic) is
optional: given, each point's band is scaled by sqrt(usual volume / its volume), as the
binomial noise of a ratio is, so a night of few requests does not page on its noise
and a daytime burst is judged against the day's own. (Only the band: the range seen and
the histogram of past values still learn from every point.)
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from detectors.anomaly.kernel import kernel
from detectors.anomaly.resolution import at_timestamps, to_resolution
from detectors.anomaly.state import AnomalyState
from detectors.anomaly.tuning import AnomalyTuning
from detectors.records import Direction, Finding, FindingKind, Series


@dataclass(frozen=True)
class AnomalyParams:
    """Per series: the score that makes a finding, the direction that hurts, the model."""

    threshold: float = 0.9  # the daemon's default policy.anomaly_threshold
    direction: Direction = Direction.BOTH
    model: str | None = None
    tuning: AnomalyTuning = field(default_factory=AnomalyTuning)
    # > 0: `score` judges the mean of each whole bin of this many seconds (resolution.py);
    # the caller sets it only for series sampled finer than that
    resolution: float = 0.0


@dataclass(frozen=True)
class PointDetail:
    """Per-point outputs: the score and what the detector expected, with its band."""

    scores: np.ndarray
    expected: np.ndarray
    scale: np.ndarray  # one standard deviation of the expected noise
    volume_factor: np.ndarray  # the band's width for the point's volume, of its usual width (1: none)


@dataclass(frozen=True)
class OnlineAnomalyDetector:
    params: AnomalyParams = field(default_factory=AnomalyParams)

    def new_state(self) -> AnomalyState:
        """A cold start: no point seen yet."""
        return AnomalyState(self.params.tuning.new_series_state())

    def fit(self, reference: Series, start: float, end: float) -> AnomalyState:
        """A state warmed on the reference's points in [start, end] (their findings dropped)."""
        state = self.new_state()
        self.score(state, reference.between(start, end), start, end)
        return state

    def score(self, state: AnomalyState, window: Series, start: float, end: float) -> list[Finding]:
        """`score_volume` without a volume: every band at the series' own noise."""
        return self.score_volume(state, window, None, start, end)

    def score_volume(self, state: AnomalyState, window: Series, volume: Series | None, start: float,
                     end: float) -> list[Finding]:
        """Score the points of `window` newer than the state's last point and not after
        `end`; advance `state` in place. One finding per run of points scoring >=
        `threshold` that lasts until `start` or later (a first look at a long history
        reports only what is still going on in the window). A run may continue across
        calls: its onset is then the state's remembered onset. With a `resolution`, the
        points are the means of its complete bins, stamped at each bin's end; `volume`
        (same timestamps) is binned the same way and matched by timestamp."""
        mean_of = max(self.params.resolution, 0.0)
        window = to_resolution(_infinite_as_missing(window), mean_of, end)
        vs = None if volume is None else at_timestamps(to_resolution(volume, mean_of, end), window.timestamps)
        last = state.series.last_timestamp
        ts = np.asarray(window.timestamps, dtype=np.float64)
        xs = np.asarray(window.values, dtype=np.float64)
        keep = ~(ts > end)  # NaN times stay: the kernel skips them as it always has
        if last is not None:
            keep &= ts > last
        if not keep.all():
            ts, xs = ts[keep], xs[keep]
            vs = None if vs is None else vs[keep]
        scored = _Scored(window, ts, xs, self.score_points_detail(state, ts, xs, vs))
        findings = []
        for first, peak, lastk in _runs(scored, self.params.threshold):
            if first is None:  # a point under the threshold ends the run under way
                state.run_onset = None
                continue
            if state.run_onset is None:  # a bin's point is stamped at its end; it began a bin earlier
                state.run_onset = float(ts[first]) - mean_of
            findings.append(_finding(scored, peak, state.run_onset, float(ts[lastk]), self.params, mean_of))
        return [f for f in findings if f.window_end >= start]

    def score_points(self, state: AnomalyState, timestamps: np.ndarray, values: np.ndarray,
                     volumes: np.ndarray | None = None) -> np.ndarray:
        """Scores in [0, 1] for the points, in order; updates `state` in place.

        A NaN or infinite value is a missing point: score 0, state untouched. Points not newer than
        the state's last timestamp are stale (already seen): score 0, state untouched.
        A NaN, non-positive or infinite volume is unknown: that point's band is not scaled.
        """
        return self.score_points_detail(state, timestamps, values, volumes).scores

    def score_points_detail(self, state: AnomalyState, timestamps: np.ndarray, values: np.ndarray,
                            volumes: np.ndarray | None = None) -> PointDetail:
        ts = np.ascontiguousarray(timestamps, dtype=np.float64)
        # +-Inf (histogram_quantile past the top bucket, x/0) is no level a model can learn:
        # one would set the range seen to infinity for good and blind the spatial checks
        xs = np.ascontiguousarray(np.where(np.isinf(values), np.nan, values), dtype=np.float64)
        vs = np.full(len(xs), np.nan) if volumes is None else np.ascontiguousarray(volumes, dtype=np.float64)
        if ts.shape != xs.shape or ts.ndim != 1 or vs.shape != xs.shape:
            raise ValueError(f"timestamps {ts.shape}, values {xs.shape} and volumes {vs.shape} "
                             "must be 1-D and equal length")
        tuning, s = self.params.tuning, state.series
        tuning.check(s)
        out = np.zeros(len(xs))
        expected = np.full(len(xs), np.nan)
        scale = np.full(len(xs), np.nan)
        factor = np.ones(len(xs))
        kernel(tuning.kernel_params(self.params.direction), s.scalars, s.daily, s.weekly, s.values,
               ts, xs, vs, out, expected, scale, factor, s.excursions)
        return PointDetail(out, expected, scale, factor)


def _infinite_as_missing(s: Series) -> Series:
    """`s` with its +-Inf values as NaN (missing): a bin mean must not become infinite."""
    values = np.asarray(s.values, dtype=np.float64)
    if not np.isinf(values).any():
        return s
    return Series(s.name, s.labels, s.timestamps, np.where(np.isinf(values), np.nan, values))


@dataclass(frozen=True)
class _Scored:
    series: Series
    ts: np.ndarray  # the points scored
    xs: np.ndarray
    detail: PointDetail


def _runs(s: _Scored, threshold: float) -> list[tuple[int | None, int, int]]:
    """(first, peak, last) index of each run of points scoring >= threshold (NaN values
    inside a run do not break it), and (None, i, i) for each non-NaN point under it."""
    scores, xs = s.detail.scores, s.xs
    out: list[tuple[int | None, int, int]] = []
    i, n = 0, len(s.ts)
    while i < n:
        if not scores[i] >= threshold:
            if not math.isnan(xs[i]):
                out.append((None, i, i))
            i += 1
            continue
        j = peak = i
        while j + 1 < n and (scores[j + 1] >= threshold or math.isnan(xs[j + 1])):
            j += 1
            if scores[j] > scores[peak]:
                peak = j
        out.append((i, peak, j))
        i = j + 1
    return out


def _finding(s: _Scored, k: int, onset: float, window_end: float, p: AnomalyParams,
             mean_of: float) -> Finding:
    entity = s.series.label_str()
    x = float(s.xs[k])
    exp = float(s.detail.expected[k])
    sigma = float(s.detail.scale[k])
    score = float(s.detail.scores[k])
    band = (exp - 3.0 * sigma, exp + 3.0 * sigma)
    went = Direction.UP if x >= exp else Direction.DOWN
    edge = band[1] if went is Direction.UP else band[0]
    magnitude = x - exp
    rel = magnitude / abs(exp) if exp != 0 else None
    pct = f" ({rel:+.1%})" if rel is not None else ""
    mean = f" (mean of {_span(mean_of)})" if mean_of > 0 else ""
    factor = float(s.detail.volume_factor[k])
    traffic = f" (band {factor:.2g}x its usual width for this traffic)" if factor != 1.0 else ""
    return Finding(
        kind=FindingKind.METRIC_ANOMALY,
        entity=entity,
        value=x,
        threshold=edge,
        window_start=float(s.ts[0]) - mean_of,
        window_end=window_end,
        onset=onset,
        score=score,
        model=p.model,
        service=s.series.labels.get("service"),
        direction=went,
        baseline=exp,
        statistic="value_vs_expected",
        message=(f"{entity} = {x:.6g}{mean}, expected {exp:.6g} (band {band[0]:.6g} .. {band[1]:.6g})"
                 f"{traffic}{pct}, anomaly score {score:.2f}"),
        evidence={"expected_band": [band[0], band[1]], "score": score,
                  "magnitude": magnitude, "relative_magnitude": rel, "sigma": sigma,
                  "at": float(s.ts[k]), "watched_direction": str(p.direction),
                  "resolution_s": mean_of or None, "volume_factor": factor if factor != 1.0 else None},
    )


def _span(seconds: float) -> str:
    for unit, size in (("h", 3600.0), ("min", 60.0)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g} {unit}"
    return f"{seconds:g} s"
