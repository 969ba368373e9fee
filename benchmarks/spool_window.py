"""What a cycle pays to read its samples and its reference, with the spool (issue 17).

    python -m benchmarks.spool_window --models 50 [--features 50 --rows 5000] [--profile]

Writes (once, under `--work`) the scale benchmark's sample files and training references
(benchmarks/scale_scenario.py: files of 10 minutes, a fifth of the features categorical)
for N models, then on a fresh spool, one process, one thread:

- `first_window_ms`: a first sweep's sample read per model (parse every file of the
  window into Arrow and spool it, then build the frame), through `SampleReader.window`
  (what the scale benchmark times as `samples`);
- `profile_ms`: profiling the training reference from its file (`read_reference` and
  `profile_reference`, then `to_bytes`, as a first sweep does with a spool);
- `warm_window_ms`: a later sweep's read per model (map the spooled files, slice the
  window, build the frame), the median of `--sweeps` sweeps one interval apart;
- `warm_cpu_ms`: the process' CPU time for it (less swayed by a busy machine; the
  first window's and the profiles' in brackets after theirs);
- `frame_ms`: of which building the frame from the mapped Arrow slices.

Prints one line of figures (ms per model) and the load average; `--profile` adds the
top of a cProfile of one warm sweep.
"""
from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import monitor.sources.samples as samples_module
from benchmarks.scale_scenario import END, INTERVAL, LOOKBACK, ScaleParams, _frame, model_entry, write_samples
from detectors.drift import profile_reference
from monitor.config import parse_config
from monitor.cycle.detect_drift import feature_specs
from monitor.cycle.samples import SampleReader
from monitor.sources.samples import read_reference
from monitor.sources.spool import Spool
from monitor.store.repository import Store


def scenario(p: ScaleParams, work: Path) -> Path:
    """Sample files and references only (no Prometheus, no registry), made once."""
    root = work / f"spool-window-{p.key}"
    done = root / "done"
    if not done.exists():
        rng = np.random.default_rng(17)
        (root / "reference").mkdir(parents=True, exist_ok=True)
        for i in range(p.models):
            _frame(p, rng, p.rows).to_parquet(root / "reference" / f"{p.name(i)}.parquet", index=False)
            write_samples(p, root / "samples" / p.name(i), i, rng)
        done.write_text("ok")
    return root


class FrameClock:
    """Time spent building frames from mapped slices (the module's `_arrow_frame`)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._original: Callable[..., Any] = samples_module._arrow_frame

    def __enter__(self) -> FrameClock:
        original = self._original

        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - t0

        samples_module._arrow_frame = timed
        return self

    def __exit__(self, *exc: object) -> None:
        samples_module._arrow_frame = self._original


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", type=int, default=50)
    ap.add_argument("--features", type=int, default=50)
    ap.add_argument("--rows", type=int, default=5000, help="rows per window (and in the reference)")
    ap.add_argument("--sweeps", type=int, default=3, help="warm sweeps, one interval apart")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "vigil-scale")
    ap.add_argument("--profile", action="store_true", help="cProfile one warm sweep")
    args = ap.parse_args(argv)
    p = ScaleParams(models=args.models, features=args.features, rows=args.rows)
    root = scenario(p, args.work)
    run = Path(tempfile.mkdtemp(prefix="spool-window-", dir=args.work))
    try:
        config = parse_config({"store": {"url": f"sqlite:///{run / 'vigil.db'}"},
                               "sources": {"prometheus": {"url": "http://127.0.0.1:1"}},
                               "models": [model_entry(p, root, i) for i in range(p.models)]})
        store = Store(config.store.url)
        reader = SampleReader(config, store, Spool(run / "spool"))
        models = config.models

        cpu: list[float] = []

        def sweep(t: float) -> float:
            t0, c0 = time.perf_counter(), time.process_time()
            for m in models:
                reader.window(m, t - LOOKBACK, t)
            cpu.append((time.process_time() - c0) / len(models) * 1000)
            return (time.perf_counter() - t0) / len(models) * 1000

        first = sweep(END)
        first_cpu = cpu[-1]
        t0, c0 = time.perf_counter(), time.process_time()
        for i, m in enumerate(models):
            specs = feature_specs(m)
            reference = read_reference(root / "reference" / f"{p.name(i)}.parquet", [s.name for s in specs])
            profile_reference(reference, specs).to_bytes()
        profile = (time.perf_counter() - t0) / len(models) * 1000
        profile_cpu = (time.process_time() - c0) / len(models) * 1000
        warm, frame = [], []
        cpu.clear()
        for k in range(1, args.sweeps + 1):
            with FrameClock() as clock:
                warm.append(sweep(END + k * INTERVAL))
            frame.append(clock.seconds / len(models) * 1000)
        print(f"models={p.models} features={p.features} rows={p.rows} first_window_ms={first:.1f} "
              f"(cpu {first_cpu:.1f}) profile_ms={profile:.1f} (cpu {profile_cpu:.1f}) "
              f"warm_window_ms={statistics.median(warm):.2f} "
              f"(sweeps {' '.join(f'{w:.2f}' for w in warm)}) warm_cpu_ms={statistics.median(cpu):.2f} "
              f"frame_ms={statistics.median(frame):.2f} "
              f"load={' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
        if args.profile:
            prof = cProfile.Profile()
            prof.runcall(sweep, END + (args.sweeps + 1) * INTERVAL)
            pstats.Stats(prof).sort_stats(os.environ.get("SORT", "cumulative")).print_stats(30)
        store.engine.dispose()
    finally:
        shutil.rmtree(run, ignore_errors=True)


if __name__ == "__main__":
    main()
