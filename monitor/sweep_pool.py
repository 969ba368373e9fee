"""Sweeping the fleet in worker processes, so one replica uses every core (issue 17).

Most of a cycle holds the GIL (pandas and Arrow conversions, SQLAlchemy, Python glue):
the threads of one process top out at about 1.1 cores. With `schedule.sweep_processes`
the sweep hands chunks of models to worker processes, each a `Vigil` built from the same
configuration, with its own store connections and source clients; the spool is shared on
disk, so a sample file one worker parsed is mapped by the others. A chunk is one batched
read and its cycles (`Vigil.sweep_here` in the worker), under the fencing tokens this
replica holds for the chunk's models: a worker writes only under the replica's leases,
as the replica's own threads would.

What stays in the daemon: scheduling, leases, the outbox sender, the API, /metrics and
/readyz. They take each chunk's reports, failures, metric changes (monitor/metrics_relay.py)
and source states. A worker that dies (out of memory, kill -9) fails the cycles it had not
committed; they are counted and logged as failed and run again in the next sweep, on a
new worker (the dead one's process is killed outright). A cycle is crash-safe at any
line (intents first, the outbox, reconcile at the next cycle), so a dead worker loses
nothing a dead daemon would not.

Workers start with `spawn`, not `fork`: the daemon has threads (scheduler, API, outbox)
and a fork would copy their locks mid-use.
"""
from __future__ import annotations

import logging
import math
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
import time
import zlib
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from monitor.clock import Clock
from monitor.config import VigilConfig
from monitor.cores import usable_cores
from monitor.cycle.deploys import registry_source
from monitor.cycle.drift_report import DriftReports, ReportAsk
from monitor.cycle.health import SourceHealth
from monitor.failpoints import failpoint
from monitor.logging_setup import current_setup, setup_logging
from monitor.metrics import VigilMetrics
from monitor.metrics_relay import MetricsDelta, MetricsTap, apply
from monitor.ownership import Ownership
from monitor.replicas.fence import LeaseLost
from monitor.sources.errors import SourceState
from monitor.store.repository import Store
from monitor.sweep_processes import exited, kill_worker, stop_within
from monitor.types import CycleReport
from monitor.version import vigil_version

log = logging.getLogger("vigil.sweep")
AUTO_MAX_PROCESSES = 8  # past this, the store and Prometheus are the limit, not the cores
AUTO_MODELS = 200  # below this a sweep is seconds on threads; a pool's start-up is not worth it
PARENT_CHECK_S = 0.5
CHUNK_MODELS = (10, 100)  # bounds of a chunk: one batched read each, and the unit of balance
RUNNING_VERSION = vigil_version()  # the code this process loaded (a worker started later loads what is on disk)


def process_count(setting: int | Literal["auto"], models: int, store_url: str) -> int:
    """Worker processes for a sweep of `models`; 0 runs it on the daemon's own threads.
    `auto`: one per core on a machine with several, from AUTO_MODELS models on."""
    if ":memory:" in store_url or store_url.rstrip("/") in ("sqlite:", "sqlite://"):
        return 0  # a private in-memory store: a worker would write to a database of its own
    if setting == "auto":
        cores = min(usable_cores(), AUTO_MAX_PROCESSES)
        return cores if cores > 1 and models >= AUTO_MODELS else 0
    return setting


def split(models: list[str], processes: int) -> list[list[str]]:
    """About four chunks per process, so a process that finishes early takes the next one."""
    lo, hi = CHUNK_MODELS
    size = max(lo, min(hi, math.ceil(len(models) / max(processes * 4, 1))))
    return [models[i:i + size] for i in range(0, len(models), size)]


class Sweeper(Protocol):
    """What the pool needs of a `Vigil` (monitor/vigil.py, which builds the pool: no import back)."""

    clock: Clock
    config: VigilConfig
    drift_reports: DriftReports
    fence: Any
    metrics: VigilMetrics
    health: SourceHealth
    last_cycle: dict[str, CycleReport]
    store: Store

    def sweep_here(self, t: float, names: list[str], *, workers: int | None = None,
                   token: Callable[[str], int | None] | None = None) -> tuple[list[CycleReport], dict[str, str]]: ...


@dataclass(frozen=True)
class Chunk:
    t: float
    models: list[str]
    tokens: dict[str, int | None]  # the replica's fencing token per model, when replicas share the store
    clock: Clock
    fence: Any
    threads: int = 2  # per worker: overlaps a cycle's waits on the store with another's CPU


@dataclass(frozen=True)
class ChunkOutcome:
    pid: int
    reports: list[CycleReport]
    failed: dict[str, str]  # model -> the error its cycle raised
    metrics: MetricsDelta = field(default_factory=MetricsDelta)
    sources: list[SourceState] = field(default_factory=list)
    drift_reports: list[ReportAsk] = field(default_factory=list)  # for the daemon to render


# ---------------------------------------------------------------- in the worker process
_WORKER: dict[str, Any] = {}


def _start(daemon: int, build: Callable[[VigilConfig], Sweeper], config: VigilConfig,
           logging: tuple[str, str] | None) -> None:
    # The daemon stops its workers once their chunks are done; a SIGTERM or Ctrl-C sent
    # to the whole process group must not kill them mid-cycle first.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with_parent, args=(daemon,), name="vigil-parent-watch", daemon=True).start()
    if logging is not None:
        setup_logging(*logging)
    vigil = build(config)
    vigil.drift_reports.forwarded = []
    _WORKER.update(vigil=vigil, tap=MetricsTap(vigil.metrics), seen={})


def _exit_with_parent(daemon: int) -> None:
    """A worker whose daemon died (kill -9) stops at once rather than finish its chunk
    beside the daemon that replaces it: a cycle stopped at any line is safe, two cycles of
    one model at once are not. (Its task queue never reads as closed: the worker holds
    both ends of the pipe.) A daemon that died while the worker was starting is seen too."""
    while os.getppid() == daemon:
        time.sleep(PARENT_CHECK_S)
    os._exit(1)


def _run(chunk: Chunk) -> ChunkOutcome:
    failpoint("sweep_worker_chunk")
    vigil, tap = _WORKER["vigil"], _WORKER["tap"]
    vigil.clock, vigil.fence = chunk.clock, chunk.fence
    reports, failed = vigil.sweep_here(chunk.t, chunk.models, workers=chunk.threads,
                                       token=chunk.tokens.get if chunk.tokens else None)
    return ChunkOutcome(os.getpid(), reports, failed, tap.take({r.model for r in reports}),
                        vigil.health.changed_since(_WORKER["seen"]), vigil.drift_reports.take_forwarded())


# ---------------------------------------------------------------- in the daemon
class SweepPool:
    """Worker processes kept from sweep to sweep (started at the first one). Each model
    always goes to the same worker, so what a worker keeps per model (its gauges, caches,
    the last performance report it saved) stays its own: a model never alternates between
    two workers' views of it. Models are dealt to the workers in the order of a hash of
    their names: as many to each, and no pattern of the configuration's order (every
    50th model a large one, teams listed together) lands on one worker."""

    def __init__(self, build: Callable[[VigilConfig], Sweeper], config: VigilConfig) -> None:
        """`build`: how a worker makes its Vigil from `config` (the class itself: pickled by name)."""
        self.build, self.config = build, config
        self.pids: set[int] = set()  # the workers that ran a chunk (tests, logs)
        self._workers: list[ProcessPoolExecutor | None] = []
        dealt = sorted((m.name for m in config.models), key=lambda n: (zlib.crc32(n.encode()), n))
        self._place = {name: i for i, name in enumerate(dealt)}
        self._lock = threading.Lock()
        self._closed = False
        self._fresh: set[int] = set()  # workers replaced since the last sweep: what they marked is gone

    @property
    def processes(self) -> int:
        return len(self._workers)

    def _worker(self, i: int) -> ProcessPoolExecutor:
        with self._lock:
            worker = self._workers[i]
            if worker is None:
                worker = self._workers[i] = ProcessPoolExecutor(
                    1, mp_context=multiprocessing.get_context("spawn"), initializer=_start,
                    initargs=(os.getpid(), self.build, self.config, current_setup()))
            return worker

    def assign(self, models: list[str], processes: int) -> list[list[str]]:
        """`models` by the worker that runs them (a model outside the configuration, by its hash)."""
        mine: list[list[str]] = [[] for _ in range(processes)]
        for m in models:
            mine[self._place.get(m, zlib.crc32(m.encode())) % processes].append(m)
        return mine

    def sweep(self, vigil: Sweeper, t: float, models: list[str], token: Callable[[str], int | None] | None,
              processes: int, finished: Callable[[list[str]], None] = lambda _models: None
              ) -> list[CycleReport] | None:
        """Every model's cycle at `t`, in chunks on the workers; what they report is adopted
        by `vigil` (its /metrics, /readyz and last cycles). None once closed (a reload's old
        Vigil): the caller runs the sweep on its own threads. `finished(models)` as soon as
        their cycles are over, a chunk at a time (its cycle locks handed back), on this thread."""
        with self._lock:
            if self._closed:
                return None
            if processes != len(self._workers):
                self._stop_all(wait=False)
                self._workers, self._fresh = [None] * processes, set(range(processes))
            starting = any(w is None or exited(w) for w in self._workers)
        if starting and not self._same_code():
            return None
        futures: dict[Future[ChunkOutcome], tuple[int, Chunk]] = {}
        for i, chunk in self._chunks(vigil, t, models, token):
            futures[self._submit(i, chunk)] = (i, chunk)
        swept = {m for _, chunk in futures.values() for m in chunk.models}
        finished([m for m in models if m not in swept])  # no cycle of theirs in this sweep (lease lost)
        with self._lock:  # a model's registry:<model> entry only its worker clears: a new one never had it
            fresh, self._fresh = self._fresh, set()
        for name in [n for i, names in enumerate(self.assign(models, len(self._workers))) if i in fresh for n in names]:
            vigil.health.forget(registry_source(name))  # its new worker marks it again if still missing
        reports: list[CycleReport] = []
        broken: set[int] = set()
        for future in as_completed(futures):
            i, chunk = futures[future]
            try:
                outcome = future.result()
            except Exception as e:  # the worker died (BrokenProcessPool) or could not start
                broken.add(i)
                outcome = _lost(vigil, chunk, e)
            reports.extend(adopt(vigil, outcome))
            finished(chunk.models)  # done, or its worker dead: none of its cycles runs any more
            if outcome.pid:
                self.pids.add(outcome.pid)
        for i in broken:
            self._discard(i)  # the next sweep starts a new worker there
        return reports

    def _same_code(self) -> bool:
        """Whether a worker started now would run the daemon's code: after an upgrade on
        disk under a running daemon it would not (new code, the old daemon's pickled
        configuration and chunks), so the sweep runs on the daemon's threads, slower but
        consistent, and says why each time, until the daemon restarts."""
        on_disk = vigil_version()
        if on_disk == RUNNING_VERSION:
            return True
        log.error("vigil was upgraded on disk under this daemon: sweeping on its own threads until it restarts",
                  extra={"running": RUNNING_VERSION, "on_disk": on_disk})
        return False

    def _chunks(self, vigil: Sweeper, t: float, models: list[str],
                token: Callable[[str], int | None] | None) -> list[tuple[int, Chunk]]:
        """About four chunks per worker, each of its own models, under the replica's tokens."""
        out = []
        for i, names in enumerate(self.assign(models, len(self._workers))):
            for part in split(names, 1):
                tokens = _tokens(part, token)
                kept = [n for n in part if token is None or n in tokens]
                if kept:
                    out.append((i, Chunk(t, kept, tokens, vigil.clock, vigil.fence)))
        return out

    def _submit(self, i: int, chunk: Chunk) -> Future[ChunkOutcome]:
        """A worker that died since its last chunk (out of memory while idle) is replaced.
        Its executor learns of the death only when its own thread wakes, so the process is
        asked first: a chunk given to a dead worker would fail its cycles for a sweep."""
        worker = self._worker(i)
        if exited(worker):
            return self._replace(i, chunk)
        try:
            return worker.submit(_run, chunk)
        except (BrokenProcessPool, RuntimeError):
            return self._replace(i, chunk)

    def _replace(self, i: int, chunk: Chunk) -> Future[ChunkOutcome]:
        log.warning("sweep worker gone since its last chunk: starting another", extra={"worker": i})
        self._discard(i)
        return self._worker(i).submit(_run, chunk)

    def _discard(self, i: int) -> None:
        """A broken worker's executor, its process killed: Python's own clean-up sends
        SIGTERM, which a worker ignores, and a survivor would run its chunk beside the
        cycles of the next sweep."""
        with self._lock:
            if i >= len(self._workers):  # closed since (a stop that killed it): nothing to replace
                return
            worker, self._workers[i] = self._workers[i], None
            self._fresh.add(i)
        if worker is not None:
            kill_worker(worker)

    def _stop_all(self, wait: bool) -> None:
        workers, self._workers = self._workers, []
        for worker in workers:
            if worker is not None:
                worker.shutdown(wait=wait)

    def close(self, wait: bool = False, timeout: float | None = None) -> bool:
        """Stop the workers once the chunks given to them are done (a reload's old Vigil
        finishing its sweep, the daemon's stop): nothing is cancelled. A sweep asked of a
        closed pool returns None. With `wait` and a `timeout` (seconds), a worker still
        there then is killed: False if one was in a chunk (its transaction commits nothing).
        A chunk that never ends must not hold a stopping daemon until the kubelet's SIGKILL."""
        with self._lock:
            self._closed = True
            if not wait or timeout is None:
                self._stop_all(wait)
                return True
            workers, self._workers = [w for w in self._workers if w is not None], []
        busy = stop_within(workers, timeout)
        if busy:
            log.error("sweep workers still running a chunk were killed", extra={"workers": busy, "waited_s": timeout})
        return not busy


def _lost(vigil: Sweeper, chunk: Chunk, error: BaseException) -> ChunkOutcome:
    """A chunk whose worker died: its cycles that had committed (the model's last cycle is
    at `t`) are not failures; the others are, counted and logged. (The committed ones'
    counter increments died with the worker.)"""
    why = f"{type(error).__name__}: {error}"
    try:
        done = vigil.store.cycled_at(chunk.models, chunk.t)
    except Exception:  # the store is down too: every cycle of the chunk counts as failed
        done = set()
    log.error("sweep worker lost its chunk", extra={"models": len(chunk.models), "committed": len(done),
                                                    "first": chunk.models[0], "error": why})
    return ChunkOutcome(0, [], {m: f"sweep worker lost: {why}" for m in chunk.models if m not in done})


def _tokens(models: list[str], token: Callable[[str], int | None] | None) -> dict[str, int | None]:
    if token is None:
        return {}
    out: dict[str, int | None] = {}
    for m in models:
        try:
            out[m] = token(m)
        except LeaseLost as e:  # released since the sweep began: its new owner's cycle, not ours
            log.warning("cycle stopped: lease lost", extra={"model": m, "error": str(e)})
    return out


def sweep_token(owner: Ownership, models: list[str]) -> Callable[[str], int | None]:
    """A sweep's cycle's fencing token, read when the cycle starts. Among replicas, a model
    released or lost since the sweep began raises LeaseLost (that cycle is skipped): with no
    token the cycle would run unfenced, alongside the cycle of the model's new owner."""
    began = {m: owner.token(m) for m in models}

    def token(model: str) -> int | None:
        held = owner.token(model)
        if held is None and owner.renew_every is not None:
            raise LeaseLost(model, began.get(model) or 0, None)
        return held
    return token


class WorkerCycleError(RuntimeError):
    """A cycle that failed in a sweep worker (the worker logged the traceback)."""


def adopt(vigil: Sweeper, outcome: ChunkOutcome) -> list[CycleReport]:
    """A worker's chunk, as if its cycles had run in `vigil`'s own threads."""
    m = vigil.metrics
    for r in outcome.reports:
        vigil.last_cycle[r.model] = r
        m.cycle_duration.labels(r.model).observe(r.duration_s)
        m.cycle_succeeded(r.model, r.t, r.step)
    for model, error in outcome.failed.items():
        m.cycle_failed(model, WorkerCycleError(error))
    apply(m, outcome.metrics)
    for state in outcome.sources:
        vigil.health.adopt(state)
    for a in outcome.drift_reports:
        vigil.drift_reports.save_once(vigil.config.model(a.model), a.incident_id, a.columns, a.serving, a.t)
    return outcome.reports
