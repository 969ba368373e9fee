"""Among replicas the lease heartbeat must run on time whatever the cycles do: cycles stuck
on a slow Prometheus fill the scheduler's pool, and a heartbeat waiting behind them (and
then dropped as missed) lets every lease of the replica expire, so its models move to
other replicas and its running cycles are refused by the fence."""
from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Sequence

from monitor.daemon import Runtime, build_scheduler
from monitor.ownership import Ownership
from tests.helpers_vigil import make_config, make_vigil


class CountingLeases(Ownership):
    renew_every = 0.2

    def __init__(self) -> None:
        super().__init__()
        self.ticks = 0

    def owns(self, model: str) -> bool:
        return False  # no cycle of ours runs: the pool is filled by the stuck jobs below

    def tick(self, models: Sequence[str]) -> list[str]:
        self.ticks += 1
        return []


def test_the_lease_heartbeat_runs_while_every_worker_is_busy_with_cycles(tmp_path):
    vigil = make_vigil(make_config(tmp_path))
    runtime = Runtime(vigil, None)
    owner = runtime.owner = CountingLeases()
    scheduler = build_scheduler(runtime)
    release = threading.Event()
    for i in range(12):  # more stuck cycles than the pool has threads
        scheduler.add_job(release.wait, args=[10], id=f"stuck:{i}", next_run_time=dt.datetime.now(dt.UTC))
    scheduler.start()
    try:
        time.sleep(0.3)
        before = owner.ticks
        time.sleep(1.5)
        during = owner.ticks - before
    finally:
        release.set()
        scheduler.shutdown(wait=True)
        vigil.close()
    assert during >= 3, f"{during} heartbeats in 1.5 s with renew_every 0.2 s"
