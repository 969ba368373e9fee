"""The real daemon at scale: `vigil run` processes sweeping N models for M minutes.

    python -m benchmarks.scale_daemon --models 100 --minutes 3
    python -m benchmarks.scale_daemon --models 1000 --minutes 5 --store postgresql --replicas 2

Reuses the scale benchmark's scenario (benchmarks/scale_scenario.py, cached under the work
folder) and its real Prometheus; starts `--replicas` processes `vigil run --no-api
--clock-file F` (`schedule.sweep: true`, one sweep job per interval) on one fresh store
(SQLite: one replica; PostgreSQL: replicas with leases). The scenario's data covers a few
hours, so the replicas read time from a file this harness writes: real seconds map onto
the scenario's seconds, ending near the scenario's last data.

Warm-up first: the first sweep of a fresh store reads every sample file and profiles
every reference (minutes at 1,000 models), so the measured window of M minutes starts once
every model has run and every replica has finished a sweep after the last ownership
change (bounded by `--warmup-max-s`; the clock creeps meanwhile and jumps one interval
when the window opens). Then SIGTERM (running sweeps finish, the outbox drains).

From the replicas' own JSON logs (`sweep done`, `scheduled run missed` = the lines behind
`vigil_cycles_missed_total{reason}`, `cycle done`, `outbox round`, `model ownership
changed`) and the harness' samples every second (outbox rows pending in the store, each
process' peak RSS from /proc), one line per replica:

    replica=A models_owned=… due=… ran=… missed=… min_cycles_per_model=… sweep_s_median=…
    sweep_s_max=… outbox_max_pending=… outbox_max_gap_s=… peak_rss_mb=…

Bounded: it stops by itself (warm-up bound + M minutes + the shutdown grace), stops its
children (by pid) on exit, Ctrl-C or SIGTERM, and binds 127.0.0.1 only.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import yaml

from benchmarks.chaos_replicas import Replica
from benchmarks.process_tree import rss_mb
from benchmarks.scale_daemon_report import (
    LogTail,
    ReplicaFigures,
    Samples,
    Window,
    figures,
    last_ownership_change,
    quiet_moment,
    sweep_scheduled_at,
)
from benchmarks.scale_scenario import ScaleParams, build, config_data, sweep_times
from monitor.clock import FileClock

CREEP = 1.0 / 60.0  # scenario seconds per real second while warming up: forward, barely


class ReplayTime:
    """The replicas' clock file, rewritten every 0.2 s. Until `open_window` it creeps from
    `held` (a cold sweep takes minutes, which the scenario's few hours of data cannot
    spare); from then on one real second is one scenario second, after a jump of one
    interval (a new window for the first measured sweep)."""

    def __init__(self, path: Path, held: float, interval: float) -> None:
        self.path, self.held, self.interval = path, held, interval
        self.t0 = time.time()
        self.opened_at: float | None = None
        self._stop = threading.Event()
        FileClock.write(path, held)
        self._thread = threading.Thread(target=self._loop, name="replay-time", daemon=True)
        self._thread.start()

    def _opened_at_scenario(self, opened: float) -> float:
        return self.held + (opened - self.t0) * CREEP + self.interval

    def now(self, wall: float | None = None) -> float:
        wall = time.time() if wall is None else wall
        if self.opened_at is None or wall < self.opened_at:
            return self.held + (wall - self.t0) * CREEP
        return self._opened_at_scenario(self.opened_at) + (wall - self.opened_at)

    def open_window(self) -> float:
        self.opened_at = time.time()
        FileClock.write(self.path, self.now())
        return self.opened_at

    def started_at(self, t: float) -> float:
        """The wall time a cycle at scenario time `t` started (-inf: during the warm-up)."""
        if self.opened_at is None or t < self._opened_at_scenario(self.opened_at) - 1e-6:
            return float("-inf")
        return self.opened_at + (t - self._opened_at_scenario(self.opened_at))

    def _loop(self) -> None:
        while not self._stop.wait(0.2):
            FileClock.write(self.path, self.now())

    def stop(self) -> None:
        self._stop.set()


class Sampler:
    """Every second: outbox rows waiting in the store, each replica's peak RSS (its worker processes included)."""

    def __init__(self, store_url: str, pids: Callable[[], list[int]]) -> None:
        from sqlalchemy import create_engine
        kwargs: dict[str, Any] = {"connect_args": {"timeout": 2}} if store_url.startswith("sqlite") else {}
        self.engine = create_engine(store_url, **kwargs)
        self.pids = pids
        self.samples = Samples()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="sampler", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        from sqlalchemy import text
        while not self._stop.wait(1.0):
            for pid in self.pids():
                hwm = _peak_rss_kb(pid)
                if hwm:
                    self.samples.peak_rss_kb[pid] = max(hwm, self.samples.peak_rss_kb.get(pid, 0))
            # a busy SQLite: this second goes unsampled
            with contextlib.suppress(Exception), self.engine.connect() as c:
                n = c.execute(text("SELECT count(*) FROM outbox WHERE status IN ('pending', 'sending')"))
                self.samples.outbox.append((time.time(), int(n.scalar_one())))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.engine.dispose()


def _peak_rss_kb(pid: int) -> int:
    """The replica's resident memory with its sweep worker processes (summed now), or
    its own high-water mark when that is more."""
    hwm = 0
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    return max(hwm, int(rss_mb(pid) * 1024))


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load={one:.2f}/{five:.2f}/{fifteen:.2f}"


@dataclass
class Fleet:
    replicas: list[Replica]
    tails: list[LogTail]

    def read(self) -> None:
        for tail in self.tails:
            tail.read()

    def pids(self) -> list[int]:
        return [inst.pid for r in self.replicas for inst in r.instances]

    def dead(self) -> list[str]:
        return [r.name for r in self.replicas if not r.alive()]


def _warm(fleet: Fleet, models: Sequence[str]) -> bool:
    """Every model has run, and every replica finished a sweep after the last ownership change."""
    lines = [line for tail in fleet.tails for line in tail.lines]
    ran = {str(line.fields.get("model")) for line in lines if line.message == "cycle done"}
    if not set(models) <= ran:
        return False
    settled = last_ownership_change(lines) or 0.0
    return all(any(line.message == "sweep done" and line.ts - float(line.fields.get("duration_s", 0)) > settled
                   for line in tail.lines) for tail in fleet.tails)


def _write_config(p: ScaleParams, root: Path, prom_url: str, store_url: str, folder: Path,
                  interval: float, grace: float) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    config = config_data(p, root, prom_url, store_url, folder)  # spool and notification sink per replica
    config["schedule"].update(interval=f"{interval:g}s", sweep=True, shutdown_grace=f"{grace:g}s")
    path = folder / "vigil.yaml"
    path.write_text(yaml.dump(config, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), sort_keys=False))
    return path


def _start_store(kind: str, stack: contextlib.ExitStack, run_dir: Path) -> str:
    if kind == "postgresql":
        from monitor.replay.local_postgres import LocalPostgres
        pg = LocalPostgres()
        url = pg.start()
        stack.callback(pg.stop)
        return url
    return f"sqlite:///{run_dir / 'vigil.db'}"


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def run(args: argparse.Namespace) -> list[ReplicaFigures]:
    from monitor.replay.local_prometheus import LocalPrometheus
    from monitor.store.repository import Store

    if args.replicas > 1 and args.store != "postgresql":
        raise SystemExit("--replicas above 1 needs --store postgresql (SQLite holds one daemon)")
    p = ScaleParams(models=args.models, features=args.features, series=args.series, rows=args.rows,
                    kpis=args.kpis, slos=args.slos, history_h=args.history_h, drifted=args.drifted)
    work = Path(args.work)
    root = build(p, work)
    run_dir = Path(tempfile.mkdtemp(prefix="daemon-", dir=work))
    interval, window_s = args.interval, args.minutes * 60.0
    grace = args.shutdown_grace or 2 * interval + 30
    print(f"scenario {root}; run folder {run_dir}; {_load()}", flush=True)
    with contextlib.ExitStack() as stack:
        stack.callback(_tidy, run_dir, args.keep)
        store_url = _start_store(args.store, stack, run_dir)
        prom = LocalPrometheus(root / "metrics.om", run_dir / "prometheus",
                               extra_args=("--query.lookback-delta=5m", "--query.max-samples=200000000"))
        stack.callback(prom.stop)
        prom_url = prom.start(timeout_s=900)
        print(f"prometheus ready (backfill {prom.backfill_s or 0:.0f} s)", flush=True)
        Store(store_url).close()  # the schema once, before replicas race to make it
        # The window's scenario time ends near the scenario's last data (plus what a sweep
        # running at the stop needs).
        clock = ReplayTime(run_dir / "clock", sweep_times()[-1] - window_s - 3 * interval, interval)
        stack.callback(clock.stop)
        names = [chr(ord("A") + i) for i in range(args.replicas)]
        replicas = [Replica(n, _write_config(p, root, prom_url, store_url, run_dir / f"replica-{n}", interval, grace),
                            clock.path, run_dir, {}) for n in names]
        for r in replicas:
            stack.callback(r.close)  # SIGTERM, then SIGKILL: never left running
        fleet = Fleet(replicas, [])
        sampler = Sampler(store_url, fleet.pids)
        stack.callback(sampler.stop)
        for r in replicas:
            fleet.tails.append(LogTail(r.start().log_path))
        began = time.time()
        print(f"{len(replicas)} replica(s) started (pids {fleet.pids()}); warming up (at most "
              f"{args.warmup_max_s:.0f} s)", flush=True)
        models = [p.name(i) for i in range(p.models)]
        warm = _wait(fleet, lambda: _warm(fleet, models), began + args.warmup_max_s)
        grids = [sweep_scheduled_at(line) for tail in fleet.tails for line in tail.lines[-50:]
                 if line.message == "sweep done"]
        _wait(fleet, lambda: False, quiet_moment(grids[-len(replicas) * 3:], interval, time.time()))
        opened = clock.open_window()
        print(f"{'warm' if warm else 'NOT warm (bound reached)'} after {opened - began:.0f} s; measuring "
              f"{window_s:.0f} s; {_load()}", flush=True)
        _wait(fleet, lambda: False, opened + window_s)
        load_at_end = _load()
        print(f"window over; stopping the replicas (SIGTERM, grace {grace:.0f} s)", flush=True)
        _stop_all(replicas, grace + 30)
        fleet.read()
        window = Window(opened, opened + window_s, interval)
        out = [figures(r.name, tail.lines, window, models, args.store == "postgresql", clock.started_at,
                       sampler.samples, [i.pid for i in r.instances]) for r, tail in zip(replicas, fleet.tails,
                                                                                          strict=True)]
        _print(out, models, fleet, window, replicas, load_at_end)
        return out
    raise AssertionError("unreachable")  # pragma: no cover  (mypy: the with block returns)


def _wait(fleet: Fleet, done: Callable[[], bool], until: float) -> bool:
    """Read the logs every 2 s until `done()` or `until`; a replica that dies stops the run."""
    while time.time() < until:
        fleet.read()
        if done():
            return True
        dead = fleet.dead()
        if dead:
            logs = [r.instances[-1].log_path for r in fleet.replicas if r.name in dead]
            tail = logs[0].read_text(errors="replace")[-3000:] if logs else ""
            raise RuntimeError(f"replica(s) {dead} exited during the run; log tail:\n{tail}")
        time.sleep(min(2.0, max(0.0, until - time.time())))
    fleet.read()
    return done()


def _stop_all(replicas: Sequence[Replica], timeout_s: float) -> None:
    """SIGTERM every replica at once; each waits for its running sweep and drains its outbox."""
    threads = [threading.Thread(target=r.terminate, args=(timeout_s,)) for r in replicas]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in replicas:
        inst = r.instances[-1]
        print(f"replica {r.name}: {inst.how or 'stopped'}, exit {inst.returncode}", flush=True)


def _print(out: list[ReplicaFigures], models: Sequence[str], fleet: Fleet, window: Window,
           replicas: Sequence[Replica], load_at_end: str) -> None:
    ran: dict[str, int] = {}
    for tail in fleet.tails:
        for line in tail.lines:
            if line.message == "cycle done":
                ran[str(line.fields["model"])] = 1
    owned = sum(f.models_owned for f in out)
    print(f"models {len(models)}: owned {owned} in all (a model counted twice is owned by two replicas), "
          f"{len(models) - len(ran)} never ran at all; window {window.end - window.start:.0f} s at an interval "
          f"of {window.interval:g} s; {load_at_end} at the window's end, cores={os.cpu_count()}", flush=True)
    for f in out:
        print(f.detail(), flush=True)
    for f in out:
        print(f.summary(), flush=True)


def _tidy(run_dir: Path, keep: bool) -> None:
    """The run folder's bulk (store, spools, Prometheus data) goes; the logs stay."""
    if keep:
        return
    for child in run_dir.iterdir():
        if child.is_dir():
            for sub in child.iterdir():
                if sub.is_dir():
                    shutil.rmtree(sub, ignore_errors=True)
                elif sub.suffix not in (".log", ".yaml"):
                    sub.unlink(missing_ok=True)
        elif child.suffix != ".log":
            child.unlink(missing_ok=True)
    print(f"logs kept under {run_dir}", flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    d = ScaleParams()
    ap.add_argument("--models", type=int, default=d.models)
    ap.add_argument("--minutes", type=float, default=5.0, help="the measured window, after the warm-up")
    ap.add_argument("--replicas", type=int, default=1)
    ap.add_argument("--store", choices=("sqlite", "postgresql"), default="sqlite")
    ap.add_argument("--interval", type=float, default=60.0, help="schedule.interval, seconds")
    ap.add_argument("--warmup-max-s", type=float, default=1800.0)
    ap.add_argument("--shutdown-grace", type=float, default=0.0, help="seconds (default: 2 intervals + 30 s)")
    ap.add_argument("--features", type=int, default=d.features)
    ap.add_argument("--series", type=int, default=d.series)
    ap.add_argument("--rows", type=int, default=d.rows)
    ap.add_argument("--kpis", type=int, default=d.kpis)
    ap.add_argument("--slos", type=int, default=d.slos)
    ap.add_argument("--history-h", type=float, default=d.history_h)
    ap.add_argument("--drifted", type=float, default=d.drifted)
    ap.add_argument("--keep", action="store_true", help="keep the store, spools and Prometheus data")
    ap.add_argument("--work", default=os.environ.get("VIGIL_SCALE_WORK", "/tmp/vigil-scale"))
    args = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)  # the finally blocks stop the children
    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
