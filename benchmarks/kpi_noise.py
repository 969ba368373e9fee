"""How often the KPI-change detector fires on a healthy click rate, and how soon it finds a
real drop, by traffic.

    python -m benchmarks.kpi_noise [--runs 100] [--seed 7]

A click-through rate as the daemon reads it: impressions per minute Poisson around a
traffic level, clicks binomial at 5 %, the KPI `sum(rate(clicks[5m])) /
sum(rate(impressions[5m]))` at a 60 s step; one cycle a minute with the default schedule
(30-minute window, the hour before it the baseline, the current level the median of the
last 5 minutes, threshold 5 %). Healthy: a day of cycles, the share of cycles with a KPI
drop finding. Drops of 10 % and 20 % at a random minute: caught = a finding within 30
minutes of the drop, of `--runs`, and the median minutes to it. Each figure twice: as
the daemon judges now (a move must also pass the largest move a 5-minute median made by
itself in the baseline hour, `KpiState.wander_pct`), and without that gate (as before).

Then what the automatic rollback acts on: a healthy model deployed at a random minute, two
hours of cycles after it (the correlator's deploy window); a regression is a drop finding
that began after the deploy, and since the drop must also have held (`KpiDetector.held`:
three 5-minute stretches past the bars, their median 4 sigma of the baseline's noise away,
or the last one 8 sigma away)
before it is critical. Rolled back = at least one such cycle in the two hours. And a real
drop of 10 % or 20 % at the deploy: made critical within an hour, median minutes to it.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

from detectors.kpi import KpiDetector, KpiParams, KpiState
from detectors.records import Direction, Series

WINDOW, BASELINE, RECENT = 1800.0, 3600.0, 300.0
TRAFFIC = (50, 200, 1000, 10000)  # impressions per minute


def click_rate(rng: np.random.Generator, per_min: int, minutes: int, drop_at: int | None = None,
               drop: float = 0.0) -> Series:
    p = np.full(minutes, 0.05)
    if drop_at is not None:
        p[drop_at:] *= 1.0 - drop
    shown = rng.poisson(per_min, minutes)
    clicks = rng.binomial(shown, p)
    five = np.ones(5)
    with np.errstate(invalid="ignore", divide="ignore"):
        v = np.convolve(clicks, five)[:minutes] / np.convolve(shown, five)[:minutes]
    return Series("ctr", {}, np.arange(minutes) * 60.0, v)


def fires(det: KpiDetector, s: Series, t: float, gate: bool) -> bool:
    state = det.fit(s, t - WINDOW - BASELINE, t - WINDOW)
    if not gate:
        state = KpiState(state.baseline)
    return bool(det.score(state, s, t - WINDOW, t))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=100)
    p.add_argument("--seed", type=int, default=7)
    o = p.parse_args(argv)
    det = KpiDetector(KpiParams("ctr", Direction.DOWN, 5.0, RECENT))
    first = int((WINDOW + BASELINE) / 60)
    print("impressions/min | gate | healthy cycles with a finding (per day) | 10 % drop caught, median min "
          "| 20 % drop caught, median min")
    for per_min in TRAFFIC:
        for gate in (True, False):
            rng = np.random.default_rng(o.seed)
            day = click_rate(rng, per_min, first + 1440)
            healthy = np.mean([fires(det, day, m * 60.0, gate) for m in range(first, first + 1440)])
            cells = []
            for drop in (0.10, 0.20):
                lags = []
                for _ in range(o.runs):
                    s = click_rate(rng, per_min, first + 40, drop_at=first, drop=drop)
                    hit = next((k for k in range(1, 31) if fires(det, s, (first + k) * 60.0, gate)), None)
                    if hit is not None:
                        lags.append(hit)
                cells.append(f"{len(lags)}/{o.runs}, {np.median(lags) if lags else float('nan'):.0f}")
            print(f"{per_min} | {'on' if gate else 'off'} | {healthy:.3f} ({healthy * 1440:.0f}) | "
                  f"{cells[0]} | {cells[1]}")
    deploys(det, o.runs, o.seed)
    return 0


def regression_at(det: KpiDetector, s: Series, deploy: float, minutes: int, held: bool) -> int | None:
    """Minutes after the deploy of the first cycle that would make the drop a regression."""
    for k in range(1, minutes + 1):
        t = deploy + k * 60.0
        state = det.fit(s, t - WINDOW - BASELINE, t - WINDOW)
        found = det.score(state, s, t - WINDOW, t)
        if found and found[0].onset >= deploy - 300 and (not held or found[0].evidence["held_s"] > 0):
            return k
    return None


def deploys(det: KpiDetector, runs: int, seed: int) -> None:
    first = int((WINDOW + BASELINE) / 60)
    print("\nimpressions/min | rule | healthy deploys rolled back within 2 h | 10 % drop critical within 1 h, "
          "median min | 20 % drop")
    for per_min in TRAFFIC:
        for held in (True, False):
            rng = np.random.default_rng(seed)
            rolled = sum(regression_at(det, click_rate(rng, per_min, first + 121), first * 60.0, 120, held)
                         is not None for _ in range(runs))
            cells = []
            for drop in (0.10, 0.20):
                lags = [regression_at(det, click_rate(rng, per_min, first + 61, first, drop), first * 60.0, 60, held)
                        for _ in range(runs)]
                got = [x for x in lags if x is not None]
                cells.append(f"{len(got)}/{runs}, {np.median(got) if got else float('nan'):.0f}")
            print(f"{per_min} | {'held' if held else 'one cycle'} | {rolled}/{runs} | {cells[0]} | {cells[1]}",
                  flush=True)


if __name__ == "__main__":
    sys.exit(main())
