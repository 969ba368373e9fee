"""A run the scheduler cannot start on time is counted, logged with its lag and shown in
/readyz; the outbox sender keeps its own pace whatever the cycles do."""
from __future__ import annotations

import datetime as dt
import threading
import time

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from prometheus_client import CollectorRegistry

from monitor.daemon import OutboxThread, Runtime
from monitor.schedule_watch import ScheduleWatch
from tests.helpers_vigil import make_config, make_vigil


def test_a_run_skipped_because_the_last_is_still_going_is_reported(caplog):
    registry = CollectorRegistry()
    marks: list[tuple[bool, str]] = []
    watch = ScheduleWatch(registry, interval=0.2, mark=lambda up, detail: marks.append((up, detail)))
    release = threading.Event()
    scheduler = BackgroundScheduler(timezone="UTC", executors={"default": ThreadPoolExecutor(4)},
                                    job_defaults={"coalesce": True, "max_instances": 1})
    watch.listen(scheduler)
    scheduler.add_job(lambda: (watch.started("cycle:slow"), release.wait(5)), "interval", seconds=0.2,
                      id="cycle:slow", next_run_time=dt.datetime.now(dt.UTC))
    scheduler.start()
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not registry.get_sample_value(
                "vigil_cycles_missed_total", {"reason": "busy"}):
            time.sleep(0.05)
    finally:
        release.set()
        scheduler.shutdown(wait=True)
    assert (registry.get_sample_value("vigil_cycles_missed_total", {"reason": "busy"}) or 0) >= 1
    assert any(not up and "cycle:slow" in detail and "still going" in detail for up, detail in marks)
    assert any(r.message == "scheduled run missed" and r.job == "cycle:slow" for r in caplog.records)
    # on time again for a whole interval: ready again
    time.sleep(0.25)
    watch.started("cycle:slow")
    assert marks[-1][0] is True


def test_a_late_run_counts_with_its_lag():
    registry = CollectorRegistry()
    marks: list[tuple[bool, str]] = []
    watch = ScheduleWatch(registry, interval=60, mark=lambda up, detail: marks.append((up, detail)))
    watch.report_miss("sweep", "late", 42.0)
    assert registry.get_sample_value("vigil_cycles_missed_total", {"reason": "late"}) == 1
    assert marks == [(False, "sweep: a run did not start on time (no worker was free in time), 42 s late")]
    watch.started("sweep")  # within the interval after a miss: still degraded
    assert len(marks) == 1


def test_the_outbox_sender_runs_on_its_own_thread(tmp_path):
    vigil = make_vigil(make_config(tmp_path))
    rounds: list[float] = []
    vigil.deliver = lambda now=None, limit=100: rounds.append(time.monotonic()) or 0  # type: ignore[method-assign]
    sender = OutboxThread(Runtime(vigil, None), every=0.05).start()
    try:
        deadline = time.monotonic() + 5
        while len(rounds) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        sender.stop()
    assert len(rounds) >= 3


def test_a_sweep_daemon_runs_every_model_each_interval_and_sends_meanwhile(tmp_path):
    """schedule.sweep: one job per interval runs every model (batched reads), the outbox
    sender on its own thread delivers what the cycles queue, and stop drains it."""
    from alerts.sink import JsonlSink
    from monitor.daemon import run_daemon
    from tests.helpers_vigil import MODEL, T0, incident_prometheus, metric_value, model_config, serving_registry

    cfg = make_config(tmp_path, models=[model_config("fraud"), model_config()],
                      schedule={"interval": "1s", "lookback": "30m", "baseline": "1h", "sweep": True})
    registry = serving_registry()
    registry.aliases[("fraud", "champion")] = "1"
    registry.add_version("fraud", "1", created_at=T0 - 30 * 86400)
    sink = tmp_path / "sink.jsonl"
    vigil = make_vigil(cfg, prometheus=incident_prometheus(), registry=registry,
                       notifiers={"sink": JsonlSink(sink, console=False)})
    started = time.time()
    vigil.clock = type("Clock", (), {"now": staticmethod(lambda: T0 + (time.time() - started))})()
    stop = threading.Event()
    result: list[object] = []
    worker = threading.Thread(target=lambda: result.append(run_daemon(cfg, serve_api=False, vigil=vigil, stop=stop)),
                              daemon=True)
    worker.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (
            metric_value(vigil, "vigil_cycle_duration_seconds_count", model=MODEL) >= 2
            and sink.exists() and sink.read_text().strip()):
        time.sleep(0.1)
    stop.set()
    worker.join(timeout=15)
    assert result == [0]
    for name in (MODEL, "fraud"):
        assert metric_value(vigil, "vigil_cycle_duration_seconds_count", model=name) >= 2, name
    assert sink.read_text().strip(), "the outbox sender delivered while the sweeps ran"
    assert vigil.store.outbox_counts().get("pending", 0) == 0


def test_a_big_fleet_runs_as_one_sweep_by_default_and_a_small_one_per_model(tmp_path):
    """schedule.sweep: auto (the default): one job per model keeps up with a few dozen
    models; from 50 on the fleet is swept after one batched read, which a thousand need."""
    from monitor.daemon import build_scheduler
    from tests.helpers_vigil import model_config

    def jobs(n: int, **schedule: object) -> set[str]:
        cfg = make_config(tmp_path, models=[model_config(f"m{i:03d}") for i in range(n)],
                          schedule={"interval": "1m", "lookback": "30m", "baseline": "1h", **schedule})
        runtime = Runtime(make_vigil(cfg), None)
        return {j.id for j in build_scheduler(runtime).get_jobs() if j.id == "sweep" or j.id.startswith("cycle:")}

    assert jobs(3) == {"cycle:m000", "cycle:m001", "cycle:m002"}
    assert jobs(60) == {"sweep"}
    assert jobs(60, sweep=False) == {f"cycle:m{i:03d}" for i in range(60)}
    assert jobs(3, sweep=True) == {"sweep"}


def test_a_sweep_skips_a_model_whose_lease_moved_since_the_sweep_began():
    """Among replicas a sweep's cycle runs under the lease it holds when it starts; a model
    released to another replica mid-sweep is skipped (LeaseLost), never cycled unfenced."""
    import pytest

    from monitor.daemon import sweep_token
    from monitor.ownership import Ownership
    from monitor.replicas import LeaseLost

    class Leases(Ownership):
        renew_every = 20.0

        def __init__(self) -> None:
            super().__init__()
            self.held = {"a": 3, "b": 4}

        def token(self, model: str) -> int | None:
            return self.held.get(model)

    owner = Leases()
    token = sweep_token(owner, ["a", "b"])
    del owner.held["b"]  # rebalanced to a new replica while the sweep runs
    assert token("a") == 3
    with pytest.raises(LeaseLost, match="'b'.*token 4"):
        token("b")
    assert sweep_token(Ownership(), ["a"])("a") is None  # alone on SQLite: no fencing, every model runs


def test_while_stopping_the_leases_of_a_running_sweep_are_renewed_until_it_ends(tmp_path):
    """SIGTERM stops the scheduler (and its lease heartbeat job) but the running sweep
    finishes: its leases are renewed meanwhile, so its last cycles are not refused by
    the fence; released only after it ended."""
    import threading as th

    from monitor.daemon import _stop
    from monitor.ownership import Ownership
    from monitor.shutdown import StopSignals

    events: list[str] = []

    class Leases(Ownership):
        renew_every = 0.05

        def heartbeat(self) -> None:
            events.append("heartbeat")

        def close(self) -> None:
            events.append("close")

    runtime = Runtime(make_vigil(make_config(tmp_path)), None)
    runtime.owner = Leases()
    running, release = th.Event(), th.Event()

    def sweep() -> None:
        with runtime.in_flight.track("sweep"):
            running.set()
            release.wait(5)
            events.append("sweep ended")

    worker = th.Thread(target=sweep)
    worker.start()
    running.wait(5)
    th.Timer(0.4, release.set).start()
    assert _stop(runtime, StopSignals(th.Event()), None, None) == []
    worker.join(5)
    ended = events.index("sweep ended")
    assert events[:ended].count("heartbeat") >= 3  # renewed all along the 0.4 s
    assert events[-1] == "close" and "heartbeat" not in events[ended + 1:-1]
