"""How the NAB figures hold when the series are sampled worse: gaps, jitter, coarser steps.

    python -m benchmarks.nab_perturb --data ../shared/data/nab/data \
        --windows ../shared/data/nab/combined_windows.json --random-splits 100
    python -m benchmarks.nab_perturb ... --set cover_steps=1e18   # a tuning override, compared

The shared NAB files are almost all regularly sampled; real series (and NAB's tweet,
traffic and ad-exchange files) have missing stretches of minutes to days and uneven
steps. Each shared file is replayed as seeded, deterministic variants:

- `gaps`: about 5 % of the rows removed in stretches of 1-50 rows, plus three stretches of
  1-3 days each, none touching a labelled window (the anomalies stay; what is measured
  is what the gaps do to the detector, not what they remove);
- `pauses`: three pauses of 1 or 2 whole weeks inserted before rows outside the windows, no
  row removed (the series resumes where it stopped, at the same time of day and week):
  what elapsed time alone does to the detector, with the same history;
- `jitter`: every timestamp moved by up to 30 % of the step to its nearer neighbour
  (order kept);
- `every2`, `every3`: only every 2nd / 3rd row kept.

Windows keep their meaning: each is remapped to the first and last kept row inside it
(a window left with no row keeps its first row). The unchanged detector scores each
variant; the figures are NAB's standard profile in-sample (one threshold for the corpus),
held out on the even/odd split, and held out over `--random-splits N` random half-splits
(threshold from the other half, as `benchmarks.nab --random-splits`). With `--set` the
same is printed for the tuning override, and the paired difference over the same splits.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from time import process_time
from typing import Any

import numpy as np

from benchmarks.nab import NabFile, discover, read_csv
from benchmarks.nab_scoring import PROFILES, LabelledFile, label_file, optimise, window_bounds
from benchmarks.nab_transfer import random_halves, transfer
from detectors.anomaly import AnomalyParams, AnomalyTuning, OnlineAnomalyDetector

VARIANTS = ("original", "gaps", "pauses", "jitter", "every2", "every3")
DAY = 86400.0


@dataclass(frozen=True)
class Variant:
    """One file as a variant replays it: seconds, values and its windows as row indices."""

    key: str
    seconds: np.ndarray
    values: np.ndarray
    windows: tuple[tuple[int, int], ...]


def _seconds(f: NabFile) -> np.ndarray:
    return ((f.timestamps - np.datetime64(0, "s")) / np.timedelta64(1, "s")).astype(np.float64)


def _gap_mask(n: int, step: float, bounds: tuple[tuple[int, int], ...], rng: np.random.Generator,
              share: float = 0.05, day_gaps: int = 3) -> np.ndarray:
    """Rows kept: stretches of 1-50 rows removed until `share` of the rows are gone, then
    `day_gaps` stretches of 1-3 days (in rows at the file's median step). No stretch
    touches a labelled window (nor the first row): every anomaly stays in the data."""
    inside = np.zeros(n + 1, dtype=np.int64)
    for s, e in bounds:
        inside[s] += 1
        inside[e + 1] -= 1
    in_window = np.cumsum(inside)[:n] > 0
    in_window[0] = True
    keep = np.ones(n, dtype=bool)

    def cut(length: int) -> None:
        for _ in range(100):  # a place clear of windows; give up on this stretch after 100 tries
            start = int(rng.integers(1, max(n - length, 2)))
            if not in_window[start:start + length].any():
                keep[start:start + length] = False
                return

    while (~keep).sum() < share * n:
        cut(int(rng.integers(1, 51)))
    for _ in range(day_gaps):
        cut(min(int(rng.uniform(1.0, 3.0) * DAY / step), n // 10))
    return keep


def _pauses(n: int, bounds: tuple[tuple[int, int], ...], rng: np.random.Generator, count: int = 3) -> np.ndarray:
    """Seconds added to each row: `count` pauses of 1 or 2 whole weeks, each before a row
    outside every window (no row is removed; time of day and day of week are kept)."""
    allowed = np.ones(n, dtype=bool)
    allowed[0] = False
    for s, e in bounds:
        allowed[s:e + 2] = False
    at = rng.choice(np.flatnonzero(allowed), size=count, replace=False)
    shift = np.zeros(n)
    for k in at:
        shift[k:] += 7.0 * DAY * int(rng.integers(1, 3))
    return shift


def _remap(bounds: tuple[tuple[int, int], ...], keep: np.ndarray
           ) -> tuple[np.ndarray, tuple[tuple[int, int], ...]]:
    """`keep` with every window holding at least one row, and the windows as indices of
    the kept rows: first and last kept row inside each."""
    keep = keep.copy()
    for s, e in bounds:
        if not keep[s:e + 1].any():
            keep[s] = True
    new_index = np.cumsum(keep) - 1
    out = []
    for s, e in bounds:
        inside = np.flatnonzero(keep[s:e + 1]) + s
        out.append((int(new_index[inside[0]]), int(new_index[inside[-1]])))
    return keep, tuple(out)


def make_variant(f: NabFile, bounds: tuple[tuple[int, int], ...], kind: str, seed: int) -> Variant:
    """The file `f` (windows `bounds`, row indices) as variant `kind`, reproducible from `seed`."""
    secs, values = _seconds(f), f.values
    n = len(secs)
    rng = np.random.default_rng([seed, VARIANTS.index(kind), n])
    step = float(np.median(np.diff(secs))) if n > 1 else 300.0
    if kind == "original":
        return Variant(f.key, secs, values, bounds)
    if kind == "jitter":
        d = np.diff(secs)
        room = np.minimum(np.concatenate(([d[0]], d)), np.concatenate((d, [d[-1]])))
        return Variant(f.key, secs + rng.uniform(-0.3, 0.3, n) * room, values, bounds)
    if kind == "pauses":
        return Variant(f.key, secs + _pauses(n, bounds, rng), values, bounds)
    if kind == "gaps":
        keep = _gap_mask(n, step, bounds, rng)
    elif kind in ("every2", "every3"):
        keep = np.arange(n) % int(kind[-1]) == 0
    else:
        raise ValueError(f"variant must be one of {VARIANTS}, got {kind!r}")
    keep, windows = _remap(bounds, keep)
    return Variant(f.key, secs[keep], values[keep], windows)


@dataclass(frozen=True)
class VariantFigures:
    in_sample: float
    threshold: float
    windows_hit: int
    n_windows: int
    fp_rows: int
    even_odd: tuple[float, float]
    splits: np.ndarray  # one held-out figure per half of each random split (empty: none asked)
    cpu_seconds: float
    n_points: int


def score_variants(variants: list[Variant], tuning: AnomalyTuning, n_splits: int, seed: int
                   ) -> tuple[VariantFigures, list[np.ndarray]]:
    scores, cpu = _run(variants, tuning)
    labelled = [label_file(v.key, len(v.values), v.windows) for v in variants]
    best = optimise(labelled, scores, PROFILES[0])
    n = len(variants)
    eo = transfer(labelled, {"default": scores}, [(list(range(0, n, 2)), list(range(1, n, 2)))]).default
    rs = (transfer(labelled, {"default": scores}, random_halves(n, n_splits, seed)).default
          if n_splits > 0 else np.empty(0))
    return VariantFigures(best.normalised, best.threshold, best.windows_hit, best.n_windows,
                          best.false_positive_rows, (float(eo[0]), float(eo[1])), rs, cpu,
                          sum(len(v.values) for v in variants)), scores


def _run(variants: list[Variant], tuning: AnomalyTuning) -> tuple[list[np.ndarray], float]:
    """Scores per variant file (as `benchmarks.nab.run_detector`, on the variant's own seconds)."""
    detector = OnlineAnomalyDetector(AnomalyParams(tuning=tuning))
    detector.score_points(detector.new_state(), np.arange(3.0), np.ones(3))
    t0 = process_time()
    scores = [detector.score_points(detector.new_state(), v.seconds, v.values) for v in variants]
    return scores, process_time() - t0


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """`name=value` pairs of AnomalyTuning fields, typed as the field's default."""
    base = AnomalyTuning()
    out: dict[str, Any] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        if not sep or not hasattr(base, name):
            raise ValueError(f"--set expects name=value with an AnomalyTuning field name, got {item!r}")
        out[name] = type(getattr(base, name))(float(raw)) if not isinstance(getattr(base, name), bool) else raw == "1"
    return out


def _line(label: str, v: VariantFigures) -> str:
    rs = f"  random splits mean {v.splits.mean():6.2f}" if len(v.splits) else ""
    return (f"  {label:<22} in-sample {v.in_sample:6.2f} (threshold {v.threshold:.4f}, windows "
            f"{v.windows_hit}/{v.n_windows}, FP rows {v.fp_rows})  even/odd held-out "
            f"{v.even_odd[0]:6.2f} / {v.even_odd[1]:6.2f}{rs}  {v.n_points / v.cpu_seconds / 1e6:5.1f} M points/CPU-s")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.nab_perturb", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="NAB data folder: <category>/<file>.csv")
    ap.add_argument("--windows", type=Path, required=True, help="combined_windows.json")
    ap.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, of {', '.join(VARIANTS)}")
    ap.add_argument("--seed", type=int, default=0, help="seed of the perturbations and of the random splits")
    ap.add_argument("--random-splits", type=int, default=0, metavar="N", help="held-out over N random half-splits")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="also score this AnomalyTuning override (repeatable), paired against the default")
    ap.add_argument("--per-file", action="store_true", help="windows and FP rows per file that differ")
    args = ap.parse_args(argv)
    windows = json.loads(args.windows.read_text())
    files = [read_csv(path, key) for key, path in discover(args.data, windows, results=False)]
    bounds = [window_bounds(f.key, f.timestamps, windows[f.key]) for f in files]
    override = parse_overrides(args.set)
    tunings = {"default": AnomalyTuning()}
    if override:
        tunings[",".join(args.set)] = replace(AnomalyTuning(), **override)
    print(f"NAB perturbation check: {len(files)} files, standard profile, seed {args.seed}")
    for kind in args.variants.split(","):
        variants = [make_variant(f, b, kind, args.seed) for f, b in zip(files, bounds, strict=True)]
        print(f"{kind}:")
        figures = {}
        for name, tuning in tunings.items():
            figures[name], scores = score_variants(variants, tuning, args.random_splits, args.seed)
            print(_line(name, figures[name]))
            if args.per_file:
                _per_file(variants, scores, figures[name].threshold)
        if len(figures) == 2 and args.random_splits > 0:
            a, b = figures.values()
            d = b.splits - a.splits
            print(f"  paired (override - default) over the same splits: {d.mean():+.2f} ± "
                  f"{d.std(ddof=1) / np.sqrt(len(d)):.2f}")
    return 0


def _per_file(variants: list[Variant], scores: list[np.ndarray], threshold: float) -> None:
    for v, s in zip(variants, scores, strict=True):
        lf: LabelledFile = label_file(v.key, len(v.values), v.windows)
        det = np.flatnonzero(s[lf.rows] >= threshold)
        hit = sorted({int(lf.window[k]) for k in det if lf.window[k] >= 0})
        fp = int(np.sum(lf.window[det] < 0))
        print(f"    {v.key:<60} windows {len(hit)}/{len(lf.windows)}  FP rows {fp}")


if __name__ == "__main__":
    sys.exit(main())
