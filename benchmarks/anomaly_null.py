"""How often the metric anomaly detector fires on healthy series (the false-alarm floor).

    python -m benchmarks.anomaly_null [--series 30] [--days 10] [--warmup-days 2]
                                      [--step 300] [--window SECONDS] [--resolution SECONDS]

NAB scores a detector on series with anomalies; this measures the other half an on-call
engineer cares about: anomaly-free synthetic series shaped like production metrics (a
two-level daily batch metric, a daily sine, i.i.d. noise, a log-normal latency, daily plus
weekly seasonality, sparse and daily Poisson counts, a 1 % error ratio, scored a second
time told its volume: the requests behind each point), 5-minute points
by default, the first two days left out as warm-up. `--step 60 --window 300` gives what the
daemon reads: a point a minute, each the mean of the last five (`rate(...[5m])`); the rate
of false alarms per day grows with the points per day; `--resolution 300` scores 5-minute
means, as the daemon does by default (`policy.anomaly_resolution`). Prints, per shape, the
points per series-day scoring at or above the thresholds that matter: 0.65 (the tests' strict level), NAB's
corpus-wide standard-profile threshold (0.771) and the daemon's default
`policy.anomaly_threshold` (0.9).
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np

from detectors.anomaly import AnomalyParams, OnlineAnomalyDetector
from detectors.anomaly.resolution import at_timestamps, to_resolution
from detectors.records import Direction, Series
from monitor.config import PolicyConfig

STEP = 300.0
NAB_THRESHOLD = 0.771  # the standard profile's corpus-wide threshold (python -m benchmarks.nab)
DAEMON_THRESHOLD = float(PolicyConfig.model_fields["anomaly_threshold"].default)
THRESHOLDS = (0.65, NAB_THRESHOLD, DAEMON_THRESHOLD)


def trailing_mean(x: np.ndarray, k: int) -> np.ndarray:
    """The mean of each run of `k` points ending at each point from the k-th on."""
    c = np.cumsum(np.r_[0.0, x])
    return (c[k:] - c[:-k]) / k


class Shape(NamedTuple):
    name: str
    timestamps: np.ndarray
    values: np.ndarray
    volume: np.ndarray | None = None  # a ratio's requests per point (its denominator)


def healthy_series(seed: int, days: int, step: float = STEP, window: float | None = None) -> Iterator[Shape]:
    """The healthy shapes, one point every `step` seconds. With `window` > `step` each
    point is the trailing mean over `window` (a ratio: the ratio of the window's sums), as
    a PromQL `rate(...[window])` or `avg_over_time` queried at that step gives it."""
    k = max(1, int(round((window or step) / step)))
    rng = np.random.default_rng(seed)
    ts = 1_700_000_000.0 + step * np.arange(int(days * 86400 / step) + k - 1)
    day = 2 * np.pi * ts / 86400.0
    per = step / STEP  # count rates below are per 5 minutes

    def mean(x: np.ndarray) -> np.ndarray:
        return trailing_mean(x, k)

    out = ts[k - 1:]
    batch = np.where((ts % 86400.0) < 43200.0, 10.0, 0.0)
    yield Shape("two-level daily", out, mean(batch + rng.normal(0, 0.5, len(ts))))
    yield Shape("daily sine", out, mean(100 + 20 * np.sin(day) + rng.normal(0, 1, len(ts))))
    yield Shape("i.i.d. normal", out, mean(50 + rng.normal(0, 1, len(ts))))
    yield Shape("log-normal", out, mean(np.exp(rng.normal(0, 0.5, len(ts)))))
    yield Shape("daily + weekly", out, mean(100 + 20 * np.sin(day) + 10 * np.sin(2 * np.pi * ts / 604800.0)
                                            + rng.normal(0, 2, len(ts))))
    # Counts as Prometheus increase() gives them: rare crashes or errors (mostly 0),
    # requests with a daily cycle, and an error ratio over a daily request volume.
    yield Shape("sparse counts", out, mean(rng.poisson(0.2 * per, len(ts)).astype(float)))
    yield Shape("daily counts", out, mean(rng.poisson((30 + 25 * np.sin(day)) * per).astype(float)))
    requests = rng.poisson((200 + 150 * np.sin(day)) * per)
    errors = rng.binomial(requests, 0.01)
    volume = mean(requests.astype(float))
    yield Shape("error ratio (1 %)", out, mean(errors.astype(float)) / np.maximum(volume, 1e-12), volume)


def false_alarms(n_series: int, days: int, warmup_days: int = 2, step: float = STEP,
                 window: float | None = None, resolution: float = 0.0,
                 direction: Direction = Direction.BOTH) -> dict[str, np.ndarray]:
    """Points at or above each of THRESHOLDS per series-day after the warm-up, per shape;
    with a `resolution`, the bin means the daemon scores under `policy.anomaly_resolution`.
    A shape with a volume is scored twice: as is, and told its volume. `direction`: the
    way that counts (a KPI's or SLO's bad direction), as the daemon scores it."""
    det = OnlineAnomalyDetector(AnomalyParams(direction=direction))
    counts: dict[str, np.ndarray] = {}
    for seed in range(n_series):
        for shape in healthy_series(seed, days, step, window):
            ts, x, vol = binned(shape, resolution if resolution > step else 0.0)
            after = ts >= ts[0] + warmup_days * 86400.0
            runs = {shape.name: None} | ({f"{shape.name}, volume known": vol} if vol is not None else {})
            for name, volumes in runs.items():
                s = det.score_points(det.new_state(), ts, x, volumes)[after]
                c = counts.setdefault(name, np.zeros(len(THRESHOLDS)))
                c += [np.sum(s >= t) for t in THRESHOLDS]
    return {k: v / (n_series * (days - warmup_days)) for k, v in counts.items()}


def binned(shape: Shape, resolution: float) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(timestamps, values, volume) as the daemon scores them: bin means (resolution.py)
    for the values and the volume alike, or the points as they are for `resolution` 0."""
    until = float(shape.timestamps[-1])
    out = to_resolution(Series(shape.name, {}, shape.timestamps, shape.values), resolution, until)
    if shape.volume is None:
        return out.timestamps, out.values, None
    volume = to_resolution(Series(shape.name, {}, shape.timestamps, shape.volume), resolution, until)
    return out.timestamps, out.values, at_timestamps(volume, out.timestamps)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.anomaly_null", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--series", type=int, default=30, help="series per shape")
    ap.add_argument("--days", type=int, default=10, help="days per series, warm-up included")
    ap.add_argument("--warmup-days", type=int, default=2, help="first days not counted")
    ap.add_argument("--step", type=float, default=STEP,
                    help="seconds between points (the daemon queries at sources.prometheus.step, 60 s)")
    ap.add_argument("--window", type=float, default=None,
                    help="each point is the trailing mean over this many seconds (a PromQL rate window)")
    ap.add_argument("--resolution", type=float, default=0.0,
                    help="score the means of bins this many seconds long (policy.anomaly_resolution)")
    ap.add_argument("--direction", choices=[d.value for d in Direction], default=Direction.BOTH.value,
                    help="score surprises this way only, as the daemon scores a KPI or SLO (up: an error ratio)")
    args = ap.parse_args(argv)
    if args.days <= args.warmup_days or args.series <= 0 or args.warmup_days < 0 or args.step <= 0:
        ap.error("--days must be > --warmup-days >= 0, --series > 0 and --step > 0")
    rates = false_alarms(args.series, args.days, args.warmup_days, args.step, args.window, args.resolution,
                         Direction(args.direction))
    smooth = f", each the mean of the last {args.window:g} s" if args.window and args.window > args.step else ""
    smooth += f", scored as {args.resolution:g} s bin means" if args.resolution > 0 else ""
    smooth += f", direction {args.direction}" if args.direction != Direction.BOTH.value else ""
    print(f"points per series-day scoring >= threshold ({args.series} series x {args.days - args.warmup_days} days "
          f"per shape after {args.warmup_days} days of warm-up, a point every {args.step:g} s{smooth})")
    print(f"{'shape':<32}" + "".join(f"{t:>10}" for t in THRESHOLDS))
    for name, r in rates.items():
        print(f"{name:<32}" + "".join(f"{v:>10.3f}" for v in r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
