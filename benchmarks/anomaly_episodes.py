"""What scoring 5-minute means costs in detection: injected episodes in minute series.

    python -m benchmarks.anomaly_episodes [--runs 20] [--resolution 300]

The companion of `benchmarks.anomaly_null` (false alarms on healthy series): a latency and
an error ratio queried every 60 s as `rate(...[5m])`, 12 days of history, then one episode
at a random minute of day 13 (latency multiplied, or extra errors as a share of
requests), ending at least 15 minutes before the series does. Prints, per episode kind,
how many runs reach the daemon's threshold within 15 minutes after the episode ends and
the median delay from its start, scoring every point as queried and scoring the means of
`--resolution` bins (`policy.anomaly_resolution`); an error ratio also told its volume
both ways (the requests behind each point: a KPI's or SLO's `volume_query`).
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

from benchmarks.anomaly_null import DAEMON_THRESHOLD, Shape, binned, trailing_mean
from detectors.anomaly import AnomalyParams, OnlineAnomalyDetector
from detectors.records import Direction

STEP, WINDOW, DAYS = 60.0, 5, 13
EPISODES = (("latency", 3.0, 5), ("latency", 2.0, 15), ("latency", 1.5, 60),
            ("error ratio", 0.05, 5), ("error ratio", 0.03, 15), ("error ratio", 0.02, 60))


def episode_series(seed: int, kind: str, size: float, minutes: int) -> tuple[Shape, float]:
    """The series (an error ratio with its volume) and the episode's start, for one run."""
    rng = np.random.default_rng(seed)
    n = DAYS * 1440 + WINDOW - 1
    ts = 1_700_000_100.0 + STEP * np.arange(n)
    at = (DAYS - 1) * 1440 + int(rng.integers(0, 1440 - minutes - 15))  # its whole watch inside the series
    window = slice(at, at + minutes)
    if kind == "latency":
        x = np.exp(rng.normal(0, 0.5, n))
        x[window] *= size
        return Shape(kind, ts[WINDOW - 1:], trailing_mean(x, WINDOW)), float(ts[at])
    requests = rng.poisson((200 + 150 * np.sin(2 * np.pi * ts / 86400.0)) / 5).astype(float)
    errors = rng.binomial(requests.astype(int), 0.01).astype(float)
    errors[window] += np.round(requests[window] * size)
    volume = trailing_mean(requests, WINDOW)
    ratio = trailing_mean(errors, WINDOW) / np.maximum(volume, 1e-12)
    return Shape(kind, ts[WINDOW - 1:], ratio, volume), float(ts[at])


def delays(kind: str, size: float, minutes: int, runs: int, resolution: float, use_volume: bool = False,
           direction: Direction = Direction.BOTH) -> list[float]:
    """Minutes from each episode's start to its first point at the threshold (NaN: missed)."""
    det = OnlineAnomalyDetector(AnomalyParams(direction=direction))
    out = []
    for seed in range(runs):
        shape, start = episode_series(100 + seed, kind, size, minutes)
        t, x, volume = binned(shape, resolution)
        s = det.score_points(det.new_state(), t, x, volume if use_volume else None)
        hit = np.flatnonzero((s >= DAEMON_THRESHOLD) & (t >= start) & (t <= start + 60.0 * minutes + 900.0))
        out.append((t[hit[0]] - start) / 60.0 if len(hit) else float("nan"))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.anomaly_episodes", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=20, help="runs per episode kind")
    ap.add_argument("--resolution", type=float, default=300.0, help="bin length in seconds")
    ap.add_argument("--direction", choices=[d.value for d in Direction], default=Direction.BOTH.value,
                    help="score surprises this way only, as the daemon scores a KPI or SLO (up: an error ratio)")
    args = ap.parse_args(argv)
    if args.runs <= 0 or args.resolution <= STEP:
        ap.error(f"--runs must be > 0 and --resolution > {STEP:g}")
    print(f"caught at {DAEMON_THRESHOLD} of {args.runs} runs, median minutes from the episode's start"
          + (f", direction {args.direction}" if args.direction != Direction.BOTH.value else ""))
    heads = ("every 60 s point", "points, volume known", f"{args.resolution:g} s means", "means, volume known")
    print(f"{'episode':<34}" + "".join(f"{h:>22}" for h in heads))
    for kind, size, minutes in EPISODES:
        what = f"{kind} {'x' if kind == 'latency' else '+'}{size:g} for {minutes} min"
        cells = []
        for res, use_volume in ((0.0, False), (0.0, True), (args.resolution, False), (args.resolution, True)):
            if use_volume and kind == "latency":
                cells.append("-")
                continue
            d = np.array(delays(kind, size, minutes, args.runs, res, use_volume, Direction(args.direction)))
            caught = int(np.sum(~np.isnan(d)))
            cells.append(f"{caught:>3} ({np.nanmedian(d):5.1f} min)" if caught else f"{caught:>3}")
        print(f"{what:<34}" + "".join(f"{c:>22}" for c in cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
