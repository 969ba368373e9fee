"""How often the metric anomaly detector fires on healthy series (the false-alarm floor).

    python -m benchmarks.anomaly_null [--series 30] [--days 10]

NAB scores a detector on series with anomalies; this measures the other half an on-call
engineer cares about: anomaly-free synthetic series shaped like production metrics (a
two-level daily batch metric, a daily sine, i.i.d. noise, a log-normal latency, daily plus
weekly seasonality, sparse and daily Poisson counts, a 1 % error ratio), 5-minute points,
the first two days left out as warm-up. Prints, per shape, the points per series-day
scoring at or above the thresholds that matter: 0.65 (the tests' strict level), NAB's
corpus-wide standard-profile threshold (0.771) and the daemon's default
`policy.anomaly_threshold` (0.9).
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator

import numpy as np

from monitor.config import PolicyConfig

STEP = 300.0
DAY_POINTS = int(86400 / STEP)
NAB_THRESHOLD = 0.771  # the standard profile's corpus-wide threshold (python -m benchmarks.nab)
DAEMON_THRESHOLD = float(PolicyConfig.model_fields["anomaly_threshold"].default)
THRESHOLDS = (0.65, NAB_THRESHOLD, DAEMON_THRESHOLD)


def healthy_series(seed: int, days: int) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    ts = 1_700_000_000.0 + STEP * np.arange(days * DAY_POINTS)
    day = 2 * np.pi * ts / 86400.0
    yield "two-level daily", ts, np.where((ts % 86400.0) < 43200.0, 10.0, 0.0) + rng.normal(0, 0.5, len(ts))
    yield "daily sine", ts, 100 + 20 * np.sin(day) + rng.normal(0, 1, len(ts))
    yield "i.i.d. normal", ts, 50 + rng.normal(0, 1, len(ts))
    yield "log-normal", ts, np.exp(rng.normal(0, 0.5, len(ts)))
    yield "daily + weekly", ts, (100 + 20 * np.sin(day) + 10 * np.sin(2 * np.pi * ts / 604800.0)
                                 + rng.normal(0, 2, len(ts)))
    # Counts as Prometheus increase() gives them: rare crashes or errors (mostly 0),
    # requests with a daily cycle, and an error ratio over a daily request volume.
    yield "sparse counts", ts, rng.poisson(0.2, len(ts)).astype(float)
    yield "daily counts", ts, rng.poisson(30 + 25 * np.sin(day)).astype(float)
    requests = rng.poisson(200 + 150 * np.sin(day))
    yield "error ratio (1 %)", ts, rng.binomial(requests, 0.01) / np.maximum(requests, 1)


def false_alarms(n_series: int, days: int, warmup_days: int = 2) -> dict[str, np.ndarray]:
    """Points at or above each of THRESHOLDS per series-day, per shape."""
    from detectors.anomaly import OnlineAnomalyDetector

    det = OnlineAnomalyDetector()
    counts: dict[str, np.ndarray] = {}
    for seed in range(n_series):
        for name, ts, x in healthy_series(seed, days):
            s = det.score_points(det.new_state(), ts, x)[warmup_days * DAY_POINTS:]
            c = counts.setdefault(name, np.zeros(len(THRESHOLDS)))
            c += [np.sum(s >= t) for t in THRESHOLDS]
    return {k: v / (n_series * (days - warmup_days)) for k, v in counts.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.anomaly_null", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--series", type=int, default=30, help="series per shape")
    ap.add_argument("--days", type=int, default=10, help="days per series (two are warm-up)")
    args = ap.parse_args(argv)
    if args.days <= 2 or args.series <= 0:
        ap.error("--days must be > 2 and --series > 0")
    rates = false_alarms(args.series, args.days)
    print(f"points per series-day scoring >= threshold ({args.series} series x {args.days - 2} days "
          f"per shape, 5-minute points)")
    print(f"{'shape':<18}" + "".join(f"{t:>10}" for t in THRESHOLDS))
    for name, r in rates.items():
        print(f"{name:<18}" + "".join(f"{v:>10.3f}" for v in r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
