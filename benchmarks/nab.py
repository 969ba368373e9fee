"""Score Vigil's metric anomaly detector on the Numenta Anomaly Benchmark (NAB).

    python -m benchmarks.nab --data ../shared/data/nab/data \
        --windows ../shared/data/nab/combined_windows.json
    python -m benchmarks.nab --data ../shared/data/nab/data \
        --windows ../shared/data/nab/combined_windows.json --detector windowed-gaussian
    python -m benchmarks.nab --data ../shared/data/nab/data \
        --windows ../shared/data/nab/combined_windows.json --sensitivity
    python -m benchmarks.nab --data ../shared/data/nab/data \
        --windows ../shared/data/nab/combined_windows.json --two-fold --random-splits 100 --by-category
    python -m benchmarks.nab --scores ../shared/data/nab/reference_results/numenta \
        --windows ../shared/data/nab/combined_windows.json

`--data` replays every CSV under DIR (NAB layout: <category>/<file>.csv with
timestamp,value) through the daemon's detector, one series at a time, point by point
semantics (only the past is used), with one configuration for all files. `--scores`
scores precomputed result CSVs in NAB's results layout instead
(<category>/<detector>_<file>.csv with an anomaly_score column). Prints the standard,
reward-low-FP and reward-low-FN scores with their corpus-wide thresholds, and the
replay throughput. `--two-fold` and `--random-splits N` give held-out figures: threshold
(and setting) chosen on one half of the files, scored on the other; `--by-category` scores
each NAB category at the threshold chosen on the others (evaluation only: the detector
never sees a category).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.nab_scoring import (
    PROFILES,
    LabelledFile,
    ProfileResult,
    label_file,
    optimise,
    score_at,
    window_bounds,
)
from benchmarks.nab_transfer import TransferResult, leave_group_out, random_halves, transfer
from detectors.anomaly import AnomalyParams, AnomalyState, AnomalyTuning, OnlineAnomalyDetector


@dataclass(frozen=True)
class NabFile:
    key: str  # "category/file.csv", the key of combined_windows.json
    timestamps: np.ndarray  # datetime64[us]
    values: np.ndarray  # float64
    anomaly_score: np.ndarray | None


def read_csv(path: Path, key: str) -> NabFile:
    with open(path, newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            raise ValueError(f"{path}: empty file, expected a header with timestamp,value")
        cols = {name.strip(): k for k, name in enumerate(header)}
        for need in ("timestamp", "value"):
            if need not in cols:
                raise ValueError(f"{path}: missing column {need!r} (header: {header})")
        rows = list(reader)
    ts = np.array([r[cols["timestamp"]].strip().replace(" ", "T") for r in rows],
                  dtype="datetime64[us]")
    values = np.array([r[cols["value"]] if r[cols["value"]].strip() else "nan" for r in rows],
                      dtype=np.float64)
    score = None
    if "anomaly_score" in cols:
        score = np.array([r[cols["anomaly_score"]] for r in rows], dtype=np.float64)
    return NabFile(key, ts, values, score)


def _results_key(category: str, filename: str, known: set[str]) -> str | None:
    """Results files are named <detector>_<file>.csv; find the data file they belong to."""
    best = None
    for key in known:
        cat, _, name = key.partition("/")
        if cat == category and (filename == name or filename.endswith("_" + name)) and (
                best is None or len(key) > len(best)):
            best = key
    return best


def discover(root: Path, windows: dict[str, list], results: bool) -> list[tuple[str, Path]]:
    found = []
    for path in sorted(root.rglob("*.csv")):
        rel = path.relative_to(root)
        if len(rel.parts) != 2:
            continue  # NAB layout is <category>/<file>.csv; summary files sit at the top
        if results:
            key = _results_key(rel.parts[0], rel.parts[1], set(windows))
        else:
            key = rel.as_posix()
            key = key if key in windows else None
        if key is None:
            raise ValueError(f"{path}: no entry for this file in the windows file")
        found.append((key, path))
    if not found:
        raise ValueError(f"{root}: no <category>/<file>.csv found")
    return found


def windowed_gaussian_scores(values: np.ndarray, window: int = 1000) -> np.ndarray:
    """The floor: NAB's windowed Gaussian, score = 1 - tail probability of the value under
    a Gaussian fitted to the previous `window` values (vectorised; the past only)."""
    from scipy.special import ndtr

    x = np.nan_to_num(values.astype(np.float64))
    n = len(x)
    c1 = np.concatenate(([0.0], np.cumsum(x)))
    c2 = np.concatenate(([0.0], np.cumsum(x * x)))
    i = np.arange(n)
    lo = np.maximum(i - window, 0)
    cnt = (i - lo).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (c1[i] - c1[lo]) / cnt
        var = np.maximum((c2[i] - c2[lo]) / cnt - mean * mean, 0.0)
    std = np.sqrt(var)
    std = np.where(std == 0.0, 1e-6, std)
    z = np.abs(x - mean) / std
    score = 1.0 - ndtr(-z)  # 1 - Q(|z|)
    score[0] = 0.0
    return np.nan_to_num(score)


def run_detector(files: list[NabFile], which: str, tuning: AnomalyTuning | None = None
                 ) -> tuple[list[np.ndarray], float]:
    detector = OnlineAnomalyDetector(AnomalyParams(tuning=tuning or AnomalyTuning()))
    # load the compiled kernel before the clock starts
    detector.score_points(detector.new_state(), np.arange(3.0), np.ones(3))
    scores = []
    t0 = time.process_time()  # CPU seconds: points per second per core, whatever else runs
    for f in files:
        seconds = (f.timestamps - np.datetime64(0, "s")) / np.timedelta64(1, "s")
        if which == "windowed-gaussian":
            scores.append(windowed_gaussian_scores(f.values))
        else:
            state = detector.new_state()
            scores.append(detector.score_points(state, seconds.astype(np.float64), f.values))
    return scores, time.process_time() - t0


def daemon_cycle(files: list[NabFile], n_series: int, history: int = 2000, window: int = 30
                 ) -> tuple[float, float]:
    """Time one daemon cycle over `n_series` series: each pulls an overlapping window of
    `window` points of which the newest is new, restores its state from a dict, scores,
    and saves the state. States are warmed on `history` points of a NAB file (copied to
    every series using that file). Returns (seconds for the whole cycle including state
    (de)serialisation, seconds of detector scoring alone)."""
    import copy

    from detectors.records import Series

    detector = OnlineAnomalyDetector(AnomalyParams(threshold=0.65))
    usable = [f for f in files if len(f.values) > history + 1]
    warmed = []
    for f in usable:
        secs = ((f.timestamps - np.datetime64(0, "s")) / np.timedelta64(1, "s")).astype(np.float64)
        st = detector.new_state()
        detector.score_points(st, secs[:history], f.values[:history])
        warmed.append((secs, f.values, st.to_dict()))
    jobs = []
    for k in range(n_series):
        secs, vals, blob = warmed[k % len(warmed)]
        series = Series("metric", {"series": str(k)}, secs[history + 1 - window:history + 1],
                        vals[history + 1 - window:history + 1])
        jobs.append((series, copy.deepcopy(blob)))
    t0 = time.perf_counter()
    for series, blob in jobs:
        state = AnomalyState.from_dict(blob)
        detector.score(state, series, float(series.timestamps[0]), float(series.timestamps[-1]))
        state.to_dict()
    full = time.perf_counter() - t0
    states = [AnomalyState.from_dict(blob) for _, blob in jobs]
    t0 = time.perf_counter()
    for (series, _), st in zip(jobs, states, strict=True):
        detector.score_points(st, series.timestamps[-1:], series.values[-1:])
    return full, time.perf_counter() - t0


# parameters whose value was chosen on this benchmark (or could have been): each is moved
# down and up by a quarter and the corpus re-scored, so one sees whether the figure rests
# on a knife edge
SENSITIVITY_PARAMS = ("alpha_level", "alpha_err", "short_weight", "long_weight", "spatial_tolerance",
                      "spatial_min_z", "gap_min_z", "refractory_seconds", "value_bins", "gap_memory",
                      "gap_scale", "gap_max_points", "exc_min", "exc_record", "exc_decay", "exc_kappa", "exc_max_run",
                      "exc_scale", "exc_gap_scale")


def sensitivity(files: list[NabFile], windows: dict[str, list], factor: float = 0.25
                ) -> list[tuple[str, float, float, ProfileResult]]:
    """Standard-profile result with each of SENSITIVITY_PARAMS scaled by 1 -/+ `factor`."""
    from dataclasses import replace

    base = AnomalyTuning()
    rows = []
    for name in SENSITIVITY_PARAMS:
        v = getattr(base, name)
        for f in (1.0 - factor, 1.0 + factor):
            new = type(v)(round(v * f)) if isinstance(v, int) else v * f
            scores, _ = run_detector(files, "vigil", replace(base, **{name: new}))
            rows.append((name, float(v), float(new), evaluate(files, scores, windows)[0][0]))
    return rows


# The settings the sensitivity check found least settled (a spike, not a plateau), and
# their neighbours: the candidates the two-fold check chooses among.
TRANSFER_GRID: dict[str, tuple[float, ...]] = {"refractory_seconds": (60_000.0, 86_400.0, 120_000.0),
                                               "gap_scale": (3.0, 4.0, 5.0)}


def transfer_candidates() -> dict[str, AnomalyTuning]:
    """The shipped default and every combination of TRANSFER_GRID, by name."""
    from dataclasses import replace
    from itertools import product

    base = AnomalyTuning()
    names = list(TRANSFER_GRID)
    candidates = {"default": base}
    for vals in product(*TRANSFER_GRID.values()):
        change: dict[str, Any] = dict(zip(names, vals, strict=True))
        candidates[",".join(f"{n}={v:g}" for n, v in change.items())] = replace(base, **change)
    return candidates


def two_fold(files: list[NabFile], windows: dict[str, list]) -> list[dict[str, object]]:
    """Held-out figures: for each half (even/odd-indexed files), the candidate setting and
    the threshold that score best on the OTHER half, scored on this one at that
    threshold; and the shipped default the same way (its threshold chosen on the other
    half). Nothing about a half is chosen on that half."""
    candidates = transfer_candidates()
    halves = [list(range(0, len(files), 2)), list(range(1, len(files), 2))]
    labelled = [label_file(f.key, len(f.values), window_bounds(f.key, f.timestamps, windows[f.key])) for f in files]
    standard = PROFILES[0]
    fitted: dict[str, list[ProfileResult]] = {}
    all_scores: dict[str, list[np.ndarray]] = {}
    for name, tuning in candidates.items():
        all_scores[name], _ = run_detector(files, "vigil", tuning)
        fitted[name] = [optimise([labelled[i] for i in h], [all_scores[name][i] for i in h], standard) for h in halves]
    rows: list[dict[str, object]] = []
    for k, held in enumerate(halves):
        other = 1 - k
        chosen = max(candidates, key=lambda n: fitted[n][other].normalised)
        for label, name in (("default", "default"), ("chosen on the other half", chosen)):
            r = score_at([labelled[i] for i in held], [all_scores[name][i] for i in held], standard,
                         fitted[name][other].threshold)
            rows.append({"half": "even" if k == 0 else "odd", "setting": label, "candidate": name,
                         "held_out": r.normalised, "in_sample": fitted[name][k].normalised,
                         "threshold": fitted[name][other].threshold})
    return rows


def random_splits(files: list[NabFile], windows: dict[str, list], n_splits: int, seed: int = 0
                  ) -> tuple[TransferResult, TransferResult]:
    """The two-fold rule over `n_splits` random half-splits (see benchmarks/nab_transfer.py),
    candidates as in `two_fold`; and the even/odd split alone under the same rule."""
    labelled = [label_file(f.key, len(f.values), window_bounds(f.key, f.timestamps, windows[f.key])) for f in files]
    scores = {name: run_detector(files, "vigil", tuning)[0] for name, tuning in transfer_candidates().items()}
    even_odd = [(list(range(0, len(files), 2)), list(range(1, len(files), 2)))]
    return (transfer(labelled, scores, random_halves(len(files), n_splits, seed)),
            transfer(labelled, scores, even_odd))


def evaluate(files: list[NabFile], scores: list[np.ndarray], windows: dict[str, list]
             ) -> tuple[list[ProfileResult], list[LabelledFile]]:
    labelled = [label_file(f.key, len(f.values), window_bounds(f.key, f.timestamps, windows[f.key]))
                for f in files]
    return [optimise(labelled, scores, p) for p in PROFILES], labelled


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.nab", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", type=Path, help="NAB data folder: <category>/<file>.csv")
    src.add_argument("--scores", type=Path, help="NAB results folder of one detector")
    ap.add_argument("--windows", type=Path, required=True, help="combined_windows.json")
    ap.add_argument("--detector", choices=("vigil", "windowed-gaussian"), default="vigil",
                    help="with --data: Vigil's detector (default) or the windowed-Gaussian floor")
    ap.add_argument("--per-file", action="store_true",
                    help="also print each file's windows hit at the standard threshold")
    ap.add_argument("--sensitivity", action="store_true",
                    help="with --data: re-score with each tuned parameter moved by -/+25 %%")
    ap.add_argument("--two-fold", action="store_true",
                    help="with --data: held-out halves (even/odd files); setting and threshold from the other half")
    ap.add_argument("--random-splits", type=int, default=0, metavar="N",
                    help="with --data: the two-fold rule over N random half-splits (mean, spread, paired)")
    ap.add_argument("--by-category", action="store_true",
                    help="each NAB category scored at the threshold chosen on the other categories' files")
    ap.add_argument("--seed", type=int, default=0, help="with --random-splits: the splits' random seed")
    ap.add_argument("--cycle-series", type=int, default=10000,
                    help="with --data: also time one daemon cycle over this many series (0: skip)")
    return ap


def _scores(args: argparse.Namespace, files: list[NabFile], root: Path
            ) -> tuple[list[np.ndarray], str, float | None]:
    """(scores per file, what they are, seconds the detector took or None for stored results)."""
    if args.scores is None:
        scores, elapsed = run_detector(files, args.detector)
        return scores, f"detector {args.detector} over {root}", elapsed
    missing = [f.key for f in files if f.anomaly_score is None]
    if missing:
        raise ValueError(f"results files without an anomaly_score column: {missing[:3]}")
    return [f.anomaly_score for f in files if f.anomaly_score is not None], f"results in {root}", None


def _print_results(label: str, files: list[NabFile], results: list[ProfileResult], elapsed: float | None) -> None:
    n_points = sum(len(f.values) for f in files)
    print(f"NAB: {label}: {len(files)} files, {n_points} points, "
          f"{results[0].n_windows} windows")
    print(f"{'profile':<20} {'threshold':>16} {'raw':>12} {'score':>8} {'windows hit':>12} "
          f"{'FP rows':>8}")
    for r in results:
        print(f"{r.profile:<20} {r.threshold:>16.12f} {r.raw:>12.4f} {r.normalised:>8.2f} "
              f"{r.windows_hit:>6}/{r.n_windows:<5} {r.false_positive_rows:>8}")
    if elapsed is not None:
        print(f"throughput: {n_points / elapsed:,.0f} points/s ({elapsed:.3f} CPU s, one core, "
              f"series replayed one after another)")


def _print_per_file(files: list[NabFile], scores: list[np.ndarray], labelled: list[LabelledFile],
                    threshold: float) -> None:
    for f, s, lf in zip(files, scores, labelled, strict=True):
        det = np.flatnonzero(s[lf.rows] >= threshold)
        hit = sorted({int(lf.window[k]) for k in det if lf.window[k] >= 0})
        fp = int(np.sum(lf.window[det] < 0))
        print(f"  {f.key:<60} windows {len(hit)}/{len(lf.windows)}  FP rows {fp}")


def _print_random_splits(rs: TransferResult, eo: TransferResult, n: int) -> None:
    print(f"random half-splits (standard profile; {n} splits, {2 * n} held-out halves; threshold, and for "
          f"'chosen' the setting, chosen on the other half):")
    for label, v in (("default, threshold from the other half", rs.default),
                     ("setting and threshold from the other half", rs.chosen),
                     ("default, each half's own threshold", rs.in_half)):
        print(f"  {label:<44} mean {v.mean():6.2f}  sd {v.std():5.2f}  "
              f"10-90 % {np.percentile(v, 10):6.2f} .. {np.percentile(v, 90):6.2f}")
    eo_mean = float(eo.default.mean())
    per_split = rs.default.reshape(-1, 2).mean(axis=1)
    print(f"  the even/odd split (default, both halves' mean {eo_mean:.2f}) is below "
          f"{np.mean(per_split > eo_mean):.0%} of the random splits")
    print("  settings chosen: " + ", ".join(f"{k} {v}" for k, v in rs.picks.most_common()))


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    windows = json.loads(args.windows.read_text())
    root = args.data or args.scores
    found = discover(root, windows, results=args.scores is not None)
    files = [read_csv(path, key) for key, path in found]
    scores, label, elapsed = _scores(args, files, root)
    results, labelled = evaluate(files, scores, windows)
    _print_results(label, files, results, elapsed)
    vigil_on_data = args.data is not None and args.detector == "vigil"
    if vigil_on_data and args.cycle_series > 0:
        full, scoring = daemon_cycle(files, args.cycle_series)
        print(f"daemon cycle over {args.cycle_series} series (1 new point each, 30-point "
              f"overlapping window): {full:.3f} s with state restore/save, {scoring:.3f} s "
              f"detector scoring alone")
    if args.sensitivity and vigil_on_data:
        print(f"sensitivity (standard profile; baseline {results[0].normalised:.2f}):")
        for name, old, new, r in sensitivity(files, windows):
            print(f"  {name:<20} {old:>10.6g} -> {new:<10.6g} score {r.normalised:6.2f}  "
                  f"threshold {r.threshold:.4f}  windows {r.windows_hit}/{r.n_windows}  "
                  f"FP rows {r.false_positive_rows}")
    if args.two_fold and vigil_on_data:
        print("two-fold held-out check (standard profile; threshold and setting chosen on the other half):")
        for row in two_fold(files, windows):
            print(f"  held-out {row['half']:<4} {row['setting']:<26} {row['candidate']!s:<45} "
                  f"held-out {row['held_out']:6.2f}  (in-sample on that half {row['in_sample']:6.2f}, "
                  f"threshold {row['threshold']:.4f})")
    if args.random_splits > 0 and vigil_on_data:
        _print_random_splits(*random_splits(files, windows, args.random_splits, args.seed), args.random_splits)
    if args.by_category:
        groups: dict[str, list[int]] = {}
        for i, f in enumerate(files):
            groups.setdefault(f.key.partition("/")[0], []).append(i)
        print("each category held out (standard profile; threshold chosen on the other categories' files):")
        for g in leave_group_out(labelled, scores, groups):
            print(f"  {g.group:<26} {g.n_files:>3} files  held-out {g.held_out.normalised:6.2f}  "
                  f"(threshold {g.held_out.threshold:.4f}, windows {g.held_out.windows_hit}/{g.held_out.n_windows}, "
                  f"FP rows {g.held_out.false_positive_rows}; at its own best threshold {g.own.normalised:6.2f})")
    if args.per_file:
        _print_per_file(files, scores, labelled, results[0].threshold)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
