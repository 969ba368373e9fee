"""`vigil run` and `vigil serve`: APScheduler cycles (one job per model, or with `schedule.sweep`
one job per interval for the whole fleet), the outbox sender (a thread of its own, never
waiting behind cycles for a worker) and the HTTP API (uvicorn on its own thread), with the
main thread owning the signals. A cycle or sweep late to start makes /readyz degraded
(monitor/schedule_watch.py). SIGTERM/SIGINT: no new cycle, the running ones finish, the outbox
drains, the API stops, exit 0, within `schedule.shutdown_grace` (monitor/shutdown.py). SIGHUP
reloads the configuration (monitor/reload.py); at start-up and on a reload, open incidents of
models not in it are resolved (monitor/cycle/removed.py). A failed cycle is logged and counted.
"""
from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from functools import partial

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from monitor.audit.checkpointer import Checkpointer
from monitor.clock import Clock
from monitor.config import VigilConfig
from monitor.grafana.background import provision_in_background
from monitor.http_server import API_STOP_TIMEOUT_S, ApiThread
from monitor.ownership import LeaseKeeper
from monitor.probe import SourceProber
from monitor.reload import JobChanges, reload_vigil
from monitor.replicas import LeaseLost
from monitor.runtime import Runtime
from monitor.schedule_watch import SCHEDULE, ScheduleWatch
from monitor.shutdown import EXIT_ABANDONED, StopSignals, run_bounded
from monitor.startup import announce, prepare
from monitor.store.retention import purge
from monitor.sweep_pool import sweep_token
from monitor.vigil import Vigil

log = logging.getLogger("vigil.daemon")
SWEEP_WORKERS_EXIT_S = 5.0  # then a worker still in a chunk is killed (exit 3), not waited for until a SIGKILL
SENDER_INTERVAL_S = 5.0
API_LISTEN_WAIT_S = 10.0  # how long start-up waits for the API to listen before the first cycle


def _safe_cycle(vigil: Vigil, model: str, token: int | None = None) -> None:
    try:
        vigil.run_cycle(model, token=token)
    except LeaseLost as e:  # another replica owns the model now: its cycle, not ours, writes
        log.warning("cycle stopped: lease lost", extra={"model": model, "error": str(e)})
    except Exception as e:  # one failing cycle never stops the daemon
        vigil.metrics.cycle_failed(model, e)
        log.exception("cycle failed", extra={"model": model})


def _safe_deliver(vigil: Vigil) -> None:
    try:
        vigil.deliver()
    except Exception:  # messages stay in the outbox for the next round
        log.exception("outbox delivery round failed")


class OutboxThread:
    """The outbox sender on a thread of its own: every SENDER_INTERVAL_S, whatever the
    cycles are doing (in the scheduler's pool it waited behind them for a worker)."""

    def __init__(self, runtime: Runtime, every: float = SENDER_INTERVAL_S) -> None:
        self.runtime, self.every = runtime, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="vigil-outbox", daemon=True)
        self.rounds = 0

    def start(self) -> OutboxThread:
        self._thread.start()
        return self

    def _loop(self) -> None:
        if self._stop.wait(min(1.0, self.every)):
            return
        while True:
            began = time.monotonic()
            _deliver_job(self.runtime)
            self.rounds += 1
            log.debug("outbox round", extra={"round": self.rounds, "duration_s": round(time.monotonic() - began, 3)})
            if self._stop.wait(self.every):
                return

    def stop(self) -> None:
        self._stop.set()


def _cycle_job(runtime: Runtime, model: str) -> None:
    with runtime.current() as vigil:  # a reload mid-cycle leaves it on its Vigil
        _cycle_on(runtime, vigil, model)


def _cycle_on(runtime: Runtime, vigil: Vigil, model: str) -> None:
    vigil.drift_reports.background = True  # seconds of Evidently never hold a cycle (or a worker) up
    if runtime.watch is not None:
        runtime.watch.started(f"cycle:{model}")
    with runtime.in_flight.track(f"cycle {model}") as admitted:
        token = runtime.owner.token(model)  # once: a lease lapsing after `owns` would leave it unfenced
        known = admitted and any(m.name == model for m in vigil.config.models)
        if known and (token is not None or (runtime.owner.renew_every is None and runtime.owner.owns(model))):
            with runtime.cycling.claim([model]) as free:
                if free:
                    _safe_cycle(vigil, model, token)


def _sweep_job(runtime: Runtime) -> None:
    """`schedule.sweep`: every model this replica owns, at one time, after one batched read."""
    with runtime.current() as vigil:
        _sweep_on(runtime, vigil)


def _sweep_on(runtime: Runtime, vigil: Vigil) -> None:
    lag = runtime.watch.started("sweep") if runtime.watch is not None else 0.0
    with runtime.in_flight.track("sweep") as admitted:
        if not admitted:
            return
        owned = [m.name for m in vigil.config.models if runtime.owner.owns(m.name)]
        began = time.monotonic()
        ran = 0
        with runtime.cycling.claim(owned) as free:
            try:
                ran = len(vigil.run_sweep(models=free, token=sweep_token(runtime.owner, free)))
            except Exception:  # run_sweep already keeps one model's failure from the others
                log.exception("sweep failed")
        took = time.monotonic() - began
        log.info("sweep done", extra={"models": len(owned), "cycles": ran, "duration_s": round(took, 2),
                                      "lag_s": round(lag, 2)})
        if took > vigil.config.schedule.interval:
            log.warning("sweep took longer than the interval", extra={
                "models": len(owned), "duration_s": round(took, 1), "interval_s": vigil.config.schedule.interval})


def _tick_job(runtime: Runtime, scheduler: BackgroundScheduler) -> None:
    """Heartbeat and rebalance; a model just taken over runs now, not an interval later."""
    try:
        acquired = runtime.owner.tick([m.name for m in runtime.vigil.config.models])
    except Exception:  # the leases run out on their own; the next tick tries again
        log.exception("lease heartbeat failed")
        return
    if runtime.removed_left:
        runtime.sweep_removed()
    sweep = scheduler.get_job("sweep")  # its next run takes them if soon (start-up); else not an interval away
    soon = time.time() + (runtime.owner.renew_every or 0.0)
    if acquired and sweep is not None and sweep.next_run_time.timestamp() > soon:
        scheduler.add_job(_takeover_job, "date", args=[runtime, acquired], run_date=_dt(time.time()), name="takeover",
                          misfire_grace_time=int(runtime.vigil.config.schedule.misfire_grace))
    for i, model in enumerate(acquired):
        job = scheduler.get_job(f"cycle:{model}")
        if job is not None:
            job.modify(next_run_time=_dt(time.time() + 0.2 * i))


def _takeover_job(runtime: Runtime, models: list[str]) -> None:
    """`schedule.sweep`: the models a lease tick just took over, each under its token (if still held)."""
    with runtime.current() as vigil:
        for model in models:
            _cycle_on(runtime, vigil, model)


def _checkpoint(runtime: Runtime, step: Callable[[Checkpointer], object]) -> None:
    """An audit checkpoint (start, tick or stop; monitor/audit/checkpointer.py) by the current Vigil's checkpointer."""
    try:
        step(runtime.vigil.checkpoints)
    except Exception:  # the next one covers what this one missed; monitoring goes on
        log.exception("audit checkpoint failed", extra={"step": step.__name__})


def _purge_job(runtime: Runtime) -> None:
    """Rows past `retention:` (monitor/store/retention.py); a failure waits for the next run."""
    with runtime.in_flight.track("retention purge") as admitted:
        if admitted:
            vigil = runtime.vigil
            try:
                purge(vigil.store, vigil.config.retention, vigil.now(), config=vigil.config)
            except Exception:
                log.exception("retention purge failed")


def _deliver_job(runtime: Runtime) -> None:
    with runtime.in_flight.track("outbox sender") as admitted:
        if admitted:
            _safe_deliver(runtime.vigil)


def _add_cycle_job(scheduler: BackgroundScheduler, runtime: Runtime, model: str, first_at: float) -> None:
    sched = runtime.vigil.config.schedule
    scheduler.add_job(_cycle_job, "interval", args=[runtime, model], seconds=sched.interval,
                      id=f"cycle:{model}", name=f"cycle {model}", next_run_time=_dt(first_at),
                      misfire_grace_time=int(sched.misfire_grace), replace_existing=True)


def build_scheduler(runtime: Runtime) -> BackgroundScheduler:
    config = runtime.vigil.config
    scheduler = BackgroundScheduler(timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1})
    now = time.time()
    if config.schedule.sweeps(len(config.models)):
        scheduler.add_job(_sweep_job, "interval", args=[runtime], seconds=config.schedule.interval, id="sweep",
                          name="sweep", next_run_time=_dt(now + 1),
                          misfire_grace_time=int(config.schedule.misfire_grace))
    else:
        for i, m in enumerate(config.models):
            # Spread models over the interval so they do not all hit Prometheus at once.
            _add_cycle_job(scheduler, runtime, m.name, now + config.schedule.interval * i / len(config.models))
    # The sender has a thread of its own (OutboxThread, started with the scheduler): a busy
    # pool of cycles, or a Slack rate limit, must not delay the other.
    vigil = runtime.vigil
    runtime.watch = ScheduleWatch(vigil.metrics.registry, config.schedule.interval,
                                  lambda up, detail: runtime.vigil.health.mark(SCHEDULE, up, detail))
    runtime.watch.listen(scheduler)
    scheduler.add_job(_checkpoint, "interval", args=[runtime, Checkpointer.tick], id="audit-checkpoint",
                      seconds=config.audit.checkpoint_interval_s, name="audit checkpoint")
    scheduler.add_job(_purge_job, "interval", args=[runtime], seconds=config.retention.purge_interval,
                      id="retention-purge", name="retention purge", next_run_time=_dt(now + 30))
    if runtime.owner.renew_every is not None:  # leases: a thread of their own, never behind (then missed) a cycle
        scheduler.add_executor(ThreadPoolExecutor(1), "leases")
        scheduler.add_job(_tick_job, "interval", args=[runtime, scheduler], seconds=runtime.owner.renew_every,
                          id="leases", name="lease heartbeat", next_run_time=_dt(now), executor="leases")
    return scheduler


def _apply_jobs(scheduler: BackgroundScheduler, runtime: Runtime, changes: JobChanges) -> list[str]:
    """Jobs of kept models stay (one job per model: two cycles of a model never overlap). A new
    interval retimes the cycle jobs or the sweep, and the schedule watch, as readiness uses it.
    Each change is tried on its own: what failed is returned (the new configuration already runs)."""
    sched, models = runtime.vigil.config.schedule, runtime.vigil.config.models
    sweeping = scheduler.get_job("sweep") is not None  # the sweep reads the current Vigil's models each time
    if sched.sweeps(len(models)) != sweeping:  # a switch could run a cycle twice at once
        log.warning("schedule mode kept until the next restart", extra={"sweep": sweeping, "asked": not sweeping})
    steps: list[tuple[str, Callable[[], object]]] = [
        (f"remove job cycle:{n}", partial(scheduler.remove_job, f"cycle:{n}"))
        for n in ([] if sweeping else changes.removed)]
    if changes.retimed:
        if runtime.watch is not None:
            runtime.watch.interval = sched.interval
        if scheduler.get_job("leases") is not None:  # takeover within two intervals: the new ones
            steps.append(("retime the lease heartbeat", partial(runtime.owner.retime, sched.interval, lambda s: (
                scheduler.reschedule_job("leases", trigger="interval", seconds=s)))))
        for job in ["sweep"] if sweeping else [f"cycle:{m.name}" for m in models if m.name not in changes.added]:
            steps.append((f"retime job {job}", partial(_retime, scheduler, job, sched.interval,
                                                       int(sched.misfire_grace))))
    for job, seconds in changes.periods.items():  # retention purge, audit checkpoint
        if scheduler.get_job(job) is not None:
            steps.append((f"retime job {job}", partial(scheduler.reschedule_job, job, trigger="interval",
                                                       seconds=seconds)))
    now = time.time()
    for i, name in enumerate([] if sweeping else changes.added):
        first = now + 1 + sched.interval * i / len(changes.added)
        steps.append((f"add job cycle:{name}", partial(_add_cycle_job, scheduler, runtime, name, first)))
    return [f"{what}: {e}" for what, e in ((what, _attempt(step)) for what, step in steps) if e is not None]


def _retime(scheduler: BackgroundScheduler, job: str, seconds: float, misfire_grace: int) -> None:
    scheduler.modify_job(job, misfire_grace_time=misfire_grace)
    scheduler.reschedule_job(job, trigger="interval", seconds=seconds)


def _attempt(step: Callable[[], object]) -> Exception | None:
    try:
        step()
        return None
    except Exception as e:  # the other changes are still made; the caller reports this one
        log.exception("configuration reload: a scheduler change failed")
        return e


def _dt(t: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(t, dt.UTC)


def run_daemon(config: VigilConfig, *, serve_api: bool = True, vigil: Vigil | None = None,
               stop: threading.Event | None = None, config_path: str | None = None, cycles: bool = True,
               clock: Clock | None = None) -> int:
    """Run until `stop` (or SIGTERM/SIGINT); 0 after an orderly stop, 1 when the API could
    not serve, `EXIT_ABANDONED` when the grace ran out. `cycles=False` is `vigil serve`."""
    # Handlers first: a SIGTERM during start-up (provisioning, first cycles) must still
    # end in the orderly shutdown below, not in Python's default instant death.
    signals = StopSignals(stop or threading.Event()).install()
    try:
        runtime = prepare(vigil or Vigil(config, clock=clock), config_path, cycles)
    except BaseException:  # e.g. an audit key that cannot be read: the caller's handlers come back
        signals.restore()
        raise
    scheduler: BackgroundScheduler | None = None
    api: ApiThread | None = None
    prober: SourceProber | None = None
    code = 0
    try:  # from here on the lock is held: whatever fails, the finally below lets it go
        runtime.vigil.metrics.liveness.start(runtime.vigil.now())
        prober = SourceProber(runtime.current).start()  # /readyz waits for the sources' first answer
        if cycles:  # a crash's half-done work (PostgreSQL: each model's owner, in its first cycle)
            runtime.vigil.reconcile() if runtime.owner.renew_every is None else None
            runtime.sweep_removed()  # models removed while it was down
        api = _start_api(runtime, config) if serve_api else None
        if api is not None and not api.wait_listening(API_LISTEN_WAIT_S):
            # Before the first cycle: a daemon about to exit must not open and page incidents.
            log.error("the HTTP API cannot listen on %s:%s (%s; see the error above): not starting; free the "
                      "port or change api.port", config.api.host, config.api.port, api.failure())
            return 1
        if cycles:
            provision_in_background(config)  # beside the cycles, never before them
            scheduler = build_scheduler(runtime)
            scheduler.start()
            runtime.sender = OutboxThread(runtime).start()
        _checkpoint(runtime, Checkpointer.start)  # after ownership: a refused second daemon writes nothing
        announce(config, list(runtime.vigil.notifiers), serve_api=serve_api, cycles=cycles)
        code = _wait(runtime, signals, scheduler, api)
    finally:
        prober.stop() if prober is not None else None
        abandoned = _stop(runtime, signals, scheduler, api)
        if not runtime.vigil.close(wait=True, timeout=SWEEP_WORKERS_EXIT_S):  # the workers go first
            abandoned.append("sweep workers")
        runtime.vigil.store.close()
        signals.restore()
    if abandoned:
        grace = runtime.vigil.config.schedule.shutdown_grace
        log.error("stopped with work abandoned (grace %.0f s, or a second signal): %s", grace, ", ".join(abandoned))
        return EXIT_ABANDONED
    log.info("daemon stopped")
    return code


def _start_api(runtime: Runtime, config: VigilConfig) -> ApiThread:
    from monitor.api.app import create_app

    runtime.app = create_app(runtime.vigil)
    return ApiThread(runtime.app, config.api.host, config.api.port, access_log=config.api.access_log).start()


def _wait(runtime: Runtime, signals: StopSignals, scheduler: BackgroundScheduler | None,
          api: ApiThread | None) -> int:
    """The main thread's loop: reloads on SIGHUP; returns on a stop, or 1 if the API died."""
    while not signals.stop.wait(0.2):
        if signals.reload.is_set():
            signals.reload.clear()
            _reload(runtime, scheduler)
        if api is not None and not api.alive():
            log.error("the HTTP API stopped (%s): stopping the daemon", api.error or "no error given")
            return 1
    return 0


def _reload(runtime: Runtime, scheduler: BackgroundScheduler | None) -> None:
    """Counted as it went: refused (the running configuration kept), applied, or partial (the
    new configuration runs but some scheduler change failed: logged, and the gauge reads 0)."""
    metrics, result = runtime.vigil.metrics, "refused"
    try:
        reloaded = reload_vigil(runtime.vigil, runtime.config_path)
    except Exception:  # a reload must never take the running daemon down
        log.exception("configuration reload failed, keeping the running configuration")
        reloaded = None
    if reloaded is not None:
        new, changes = reloaded
        runtime.swap(new)  # from here on the new configuration runs, whatever fails next
        failed = _apply_jobs(scheduler, runtime, changes) if scheduler is not None else []
        if scheduler is not None:  # `vigil serve` judges no removed model
            runtime.sweep_removed()
            if new.config.grafana.provision_on_start:  # an added model's dashboard; its failures are logged there
                provision_in_background(new.config)
        result = "partial" if failed else "applied"
        if failed:
            log.error("configuration reloaded, but not all of it took effect (a restart applies the rest): %s",
                      "; ".join(failed), extra={"config": runtime.config_path})
    metrics.config_reloads.labels(result).inc()
    metrics.config_reload_ok.set(1 if result == "applied" else 0)


def _stop(runtime: Runtime, signals: StopSignals, scheduler: BackgroundScheduler | None,
          api: ApiThread | None) -> list[str]:
    """Cycles finish, the API stops, the outbox drains, all by the grace; what was left."""
    vigil = runtime.vigil
    deadline = time.monotonic() + vigil.config.schedule.shutdown_grace
    vigil.metrics.liveness.stopping = True  # /readyz says so while the API still answers
    log.info("stopping: waiting for running cycles to finish")
    runtime.in_flight.close()
    if scheduler is not None:
        scheduler.shutdown(wait=False)  # no new jobs; the running ones are waited for below
    if runtime.sender is not None:
        runtime.sender.stop()  # a round under way is tracked in in_flight and waited for
    keeper = LeaseKeeper(runtime.owner).start()  # the heartbeat job stopped with the scheduler
    abandoned = runtime.in_flight.wait_idle(deadline, signals.force)
    keeper.stop()
    runtime.owner.close()  # after the cycles: the other replicas take the models over at once
    # The API gets at least a second even past the grace: stopping it takes one tick.
    if api is not None and not api.stop(max(min(API_STOP_TIMEOUT_S + 1.0, deadline - time.monotonic()), 1.0)):
        abandoned.append("HTTP API requests")
    if scheduler is not None:  # `vigil serve` sends nothing, so has nothing to drain
        drained = not signals.force.is_set() and run_bounded("vigil-drain", lambda: _safe_deliver(runtime.vigil),
                                                             deadline)
        if not drained:
            abandoned.append("outbox drain")
    _checkpoint(runtime, Checkpointer.stop)  # the last head this process saw, after its last append
    return abandoned


def serve_api_only(config: VigilConfig, config_path: str | None = None, clock: Clock | None = None) -> int:
    """`vigil serve`: the API without cycles; same signals (no outbox drain: it sends nothing)."""
    return run_daemon(config, serve_api=True, cycles=False, config_path=config_path, clock=clock)
