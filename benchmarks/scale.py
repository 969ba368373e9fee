"""A thousand models a minute: one replica sweeping N models through the real cycle.

    python -m benchmarks.scale --models 100
    python -m benchmarks.scale --models 1000 --features 50 --series 2 --rows 5000
    python -m benchmarks.scale --models 300 --store postgresql

Builds the scenario once (benchmarks/scale_scenario.py: a real Prometheus backfilled by
promtool, sample and reference files, a SQLite MLflow registry with one deploy per
model), then on a fresh store runs a first sweep and two warm sweeps one interval
apart (`Vigil.run_sweep`, what the daemon runs), and prints

    cold_sweep_s=… warm_sweep_s=… per_model_ms=… queries_per_model=… peak_rss_mb=… store_mb=…
    store_kb_per_warm_cycle=…

plus, per sweep, where the time went (seconds summed over threads / calls), the bytes
the store grew and the process wrote (SQLite: the WAL is checkpointed before and after
each sweep, so a sweep pays for its own pages and no other's), what each cycle wrote per
table (benchmarks/store_writes.py: statements, bytes of values, transactions), and the
number of series on Vigil's own /metrics. CPU, memory (peak resident, summed over the
process and its sweep workers) and bytes written cover the worker processes; the stage
times and per-table writes are this process's only. The machine's load
average is printed with the figures: the box is shared.
"""
from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.process_tree import PeakRss, cpu_seconds, written_bytes
from benchmarks.scale_scenario import ScaleParams, build, config_data, sweep_times
from benchmarks.scale_stages import StageClock, instrument
from benchmarks.store_writes import StoreWrites


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load={one:.2f}/{five:.2f}"


def store_bytes(url: str) -> int:
    if url.startswith("sqlite"):
        path = Path(url.removeprefix("sqlite:///"))
        return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())
    from sqlalchemy import create_engine, text
    engine = create_engine(url)
    try:
        with engine.connect() as c:
            return int(c.execute(text("SELECT pg_database_size(current_database())")).scalar_one())
    finally:
        engine.dispose()


def tree_bytes(root: Path) -> int:
    """Bytes of the files under `root` (the replica's spool: local disk, not the store)."""
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) if root.exists() else 0


def prometheus_queries(url: str) -> int:
    """Queries Prometheus has answered so far, from its own /metrics: counted there, the
    figure includes the sweep's worker processes."""
    import requests
    from prometheus_client.parser import text_string_to_metric_families
    text = requests.get(f"{url}/metrics", timeout=10).text
    return int(sum(s.value for fam in text_string_to_metric_families(text) if fam.name == "prometheus_http_requests"
                   for s in fam.samples if s.name.endswith("_total")
                   and s.labels.get("handler") in ("/api/v1/query", "/api/v1/query_range")))


def metric_series(vigil: Any) -> int:
    from prometheus_client import generate_latest
    text = generate_latest(vigil.metrics.registry).decode()
    return sum(1 for line in text.splitlines() if line and not line.startswith("#"))


def run(args: argparse.Namespace) -> dict[str, float]:
    from monitor.replay.local_prometheus import LocalPrometheus

    p = ScaleParams(models=args.models, features=args.features, series=args.series, rows=args.rows,
                    kpis=args.kpis, slos=args.slos, history_h=args.history_h, drifted=args.drifted)
    work = Path(args.work)
    t0 = time.perf_counter()
    root = build(p, work)
    print(f"scenario ready in {time.perf_counter() - t0:.1f} s: {root}", flush=True)
    run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=work))
    store_url, pg = _start_store(args.store, run_dir)
    prom = LocalPrometheus(root / "metrics.om", run_dir / "prometheus",
                           extra_args=("--query.lookback-delta=5m", "--query.max-samples=200000000"))
    try:
        url = prom.start(timeout_s=600)
        print(f"prometheus backfilled in {prom.backfill_s:.1f} s", flush=True)
        args.prometheus_url = url
        return _measure(p, args, config_data(p, root, url, store_url, run_dir), store_url, run_dir)
    finally:
        prom.stop()
        if pg is not None:
            pg.stop()
        _tidy(run_dir, args.keep)


def _tidy(run_dir: Path, keep: bool) -> None:
    """The run's Prometheus TSDB, store and spool go (several GB at 1,000 models; left
    behind, runs filled a 250 GB disk); the scenario they were built from stays cached."""
    if keep:
        print(f"run folder kept: {run_dir}", flush=True)
        return
    shutil.rmtree(run_dir, ignore_errors=True)


def _start_store(kind: str, run_dir: Path) -> tuple[str, Any]:
    """The store's URL, and the PostgreSQL server to stop afterwards (None for SQLite)."""
    if kind == "postgresql":
        from monitor.replay.local_postgres import LocalPostgres
        pg = LocalPostgres()
        return pg.start(), pg
    return f"sqlite:///{run_dir / 'vigil.db'}", None


def _measure(p: ScaleParams, args: argparse.Namespace, config: dict[str, Any], store_url: str, run_dir: Path
             ) -> dict[str, float]:
    """Every sweep of the scenario timed, then the background drift reports and the outbox."""
    from monitor.config import parse_config
    from monitor.vigil import Vigil

    peak = PeakRss().start()
    vigil = Vigil(parse_config(config, "scale benchmark", str(run_dir)))
    clock = StageClock()
    instrument(clock)
    writes = StoreWrites()
    writes.attach(vigil.store.engine)
    out: dict[str, float] = {}
    sweeps = [_measure_sweep(vigil, k, t, args, (clock, writes), store_url, out) for k, t in enumerate(sweep_times())]
    began = time.perf_counter()
    vigil.drift_reports.wait(timeout=600)
    print(f"drift reports rendered in the background; the last finished {time.perf_counter() - began:.1f} s "
          f"after the last sweep", flush=True)
    delivered = vigil.deliver(limit=10_000)
    out.update(cold=sweeps[0], warm=max(sweeps[1:]), series=metric_series(vigil), peak_rss_mb=peak.stop(),
               peak_pss_mb=peak.peak_pss,
               processes=float(len(vigil.sweep_pool.pids)))
    print(f"outbox delivered {delivered}; /metrics series {out['series']:.0f}")
    _print_figures(p, out)
    clock.unwrap_all()
    writes.detach(vigil.store.engine)
    vigil.close()
    vigil.store.close()
    return out


def _measure_sweep(vigil: Any, k: int, t: float, args: argparse.Namespace, probes: tuple[StageClock, StoreWrites],
                   store_url: str, out: dict[str, float]) -> float:
    """Sweep `k` at time `t`: its seconds; its store growth and queries per model go into `out`."""
    models = args.models
    clock, writes = probes
    _checkpoint(vigil)  # what earlier sweeps left in SQLite's WAL is not this sweep's
    spool = Path(vigil.config.spool.directory)
    before, wrote, spooled = store_bytes(store_url), written_bytes(), tree_bytes(spool)
    asked = prometheus_queries(args.prometheus_url)
    clock.reset()
    writes.reset()
    began, cpu, own, queued = time.perf_counter(), cpu_seconds(), cpu_seconds(tree=False), vigil.drift_reports.pending()
    reports = _sweep(vigil, t, args, profile=bool(args.profile) and k > 0)
    took, cpu, own = time.perf_counter() - began, cpu_seconds() - cpu, cpu_seconds(tree=False) - own
    _checkpoint(vigil)  # this sweep's pages, copied from the WAL into the database: part of its cost
    grew = store_bytes(store_url) - before
    spooled = tree_bytes(spool) - spooled
    wrote = written_bytes() - wrote - max(spooled, 0)  # the spool is local disk, not the store
    queries = prometheus_queries(args.prometheus_url) - asked
    opened = sum(1 for r in reports if r.incident_id is not None)
    print(f"sweep {k} ({'first' if k == 0 else 'warm'}): {took:.1f} s, {len(reports)}/{models} cycles, "
          f"{opened} with an open incident, {queries / models:.2f} queries/model, "
          f"cpu {cpu:.1f} s ({cpu / took:.2f} cores; worker processes {cpu - own:.1f} s, this process {own:.1f} s "
          f"with {queued} drift reports queued at the start, {vigil.drift_reports.pending()} at the end), "
          f"store +{grew / 1e6:.1f} MB (process wrote {wrote / 1e6:.1f} MB), spool {spooled / 1e6:+.1f} MB, "
          f"{_load()}", flush=True)
    here = "" if not vigil.sweep_pool.pids else ", this process only: the cycles ran in worker processes"
    print(f"  stages (wall s and the calling threads' CPU s, summed over threads / calls{here}): "
          f"{clock.summary()}", flush=True)
    print(f"  store writes per model (table=bytes/statements{here}): {writes.summary(per=models)}", flush=True)
    out[f"store_mb_{k}"] = max(grew, wrote) / 1e6
    out[f"queries_{k}"] = queries / models
    out[f"written_kb_{k}"] = sum(writes.bytes.values()) / models / 1e3
    return took


def _checkpoint(vigil: Any) -> None:
    """SQLite: copy the WAL into the database file and empty it (PostgreSQL: nothing)."""
    if vigil.store.engine.dialect.name == "sqlite":
        with vigil.store.engine.connect() as c:
            c.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


def _sweep(vigil: Any, t: float, args: argparse.Namespace, profile: bool) -> list[Any]:
    """One sweep; when profiled, on one thread, printing the top `args.profile` lines (CPU
    seconds of that thread) and keeping the profile under `args.work`."""
    if not profile:
        return vigil.run_sweep(t, workers=args.workers, processes=args.processes)
    import cProfile
    import pstats
    prof = cProfile.Profile(time.thread_time)  # CPU, not wall: the machine is shared
    reports = prof.runcall(vigil.run_sweep, t, workers=1, processes=0)
    prof.dump_stats(Path(args.work) / f"profile-{args.models}-{t:.0f}-{os.getpid()}.prof")  # runs never overwrite
    pstats.Stats(prof).sort_stats("cumulative").print_stats(args.profile)
    return reports


def _print_figures(p: ScaleParams, out: dict[str, float]) -> None:
    """The summary line the README's scale figures come from."""
    warm_q = max(out["queries_1"], out["queries_2"])
    print(f"cold_sweep_s={out['cold']:.1f} warm_sweep_s={out['warm']:.1f} "
          f"per_model_ms={out['warm'] / p.models * 1000:.1f} queries_per_model={warm_q:.2f} "
          f"(first sweep {out['queries_0']:.2f}) peak_rss_mb={out['peak_rss_mb']:.0f} "
          f"peak_pss_mb={out['peak_pss_mb']:.0f} "
          f"store_mb={max(out['store_mb_1'], out['store_mb_2']):.1f} (first sweep {out['store_mb_0']:.1f}) "
          f"store_kb_per_warm_cycle={max(out['written_kb_1'], out['written_kb_2']):.1f} "
          f"metrics_series={out['series']:.0f} models={p.models} processes={out['processes']:.0f} "
          f"cores={os.cpu_count()} {_load()}", flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    d = ScaleParams()
    ap.add_argument("--models", type=int, default=d.models)
    ap.add_argument("--features", type=int, default=d.features)
    ap.add_argument("--series", type=int, default=d.series, help="GPUs (series per GPU family) per model")
    ap.add_argument("--rows", type=int, default=d.rows, help="feature rows per lookback window")
    ap.add_argument("--kpis", type=int, default=d.kpis)
    ap.add_argument("--slos", type=int, default=d.slos)
    ap.add_argument("--history-h", type=float, default=d.history_h)
    ap.add_argument("--drifted", type=float, default=d.drifted, help="share of models whose samples drift")
    ap.add_argument("--store", choices=("sqlite", "postgresql"), default="sqlite")
    ap.add_argument("--workers", type=int, default=None, help="cycles at a time per process (default: CPU count)")
    ap.add_argument("--processes", type=int, default=None,
                    help="sweep worker processes (default: schedule.sweep_processes auto; 0: this process only)")
    ap.add_argument("--profile", type=int, default=0, help="profile warm sweeps on one thread, print N lines")
    ap.add_argument("--keep", action="store_true", help="keep the run folder (store, spool, Prometheus data)")
    ap.add_argument("--work", default=os.environ.get("VIGIL_SCALE_WORK", "/tmp/vigil-scale"))
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
