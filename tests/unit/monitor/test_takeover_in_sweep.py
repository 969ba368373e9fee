"""Among replicas, a model a lease tick just took over (its replica killed) runs its cycle at
once, with `schedule.sweep` as with one job per model. With the sweep (from 50 models on, the
fleets replicas are for) it waited for this replica's next sweep, up to an interval later:
a killed replica's models went up to 7/3 of an interval from the kill without a cycle, past
the two intervals promised."""
from __future__ import annotations

import threading
import time
from typing import Any

from monitor.daemon import Runtime, _dt, _tick_job, build_scheduler
from monitor.ownership import Ownership
from tests.helpers_vigil import MODEL, make_config, make_vigil


class TakingOver(Ownership):
    """A replica whose lease tick has just taken `MODEL` over under token 9."""

    renew_every = 20.0
    replica_id = "r2"

    def __init__(self) -> None:
        super().__init__()
        self.held: dict[str, int] = {}

    def owns(self, model: str) -> bool:
        return model in self.held

    def token(self, model: str) -> int | None:
        return self.held.get(model)

    def tick(self, models: Any) -> list[str]:
        self.held[MODEL] = 9
        return [MODEL]


def test_a_model_taken_over_in_a_sweep_runs_at_once_not_at_the_next_sweep(tmp_path, monkeypatch):
    vigil = make_vigil(make_config(tmp_path, schedule={"sweep": True, "interval": "60s"}))
    runtime = Runtime(vigil, None)
    runtime.owner = TakingOver()
    ran: list[tuple[str, int | None]] = []
    done = threading.Event()

    def cycle(model: str, t: float | None = None, *, token: int | None = None, **kw: Any) -> None:
        ran.append((model, token))
        done.set()

    monkeypatch.setattr(vigil, "run_cycle", cycle)
    scheduler = build_scheduler(runtime)
    for job in ("leases", "retention-purge", "audit-checkpoint"):  # only the sweep and what the tick starts
        scheduler.remove_job(job)
    scheduler.start()
    scheduler.get_job("sweep").modify(next_run_time=_dt(time.time() + 60))  # this replica's next sweep
    try:
        began = time.monotonic()
        _tick_job(runtime, scheduler)
        assert done.wait(10), "the model taken over waits for the next sweep, up to an interval away"
        assert time.monotonic() - began < 10
    finally:
        scheduler.shutdown(wait=True)
    assert ran == [(MODEL, 9)], "one cycle, under the token the takeover holds"


def test_models_taken_at_start_up_are_left_to_the_sweep_about_to_run(tmp_path, monkeypatch):
    """A replica starting takes all its models in its first tick, a second before its first sweep:
    they are not cycled once more, one at a time, beside it (a first sweep is the heaviest)."""
    vigil = make_vigil(make_config(tmp_path, schedule={"sweep": True, "interval": "60s"}))
    runtime = Runtime(vigil, None)
    runtime.owner = TakingOver()
    scheduler = build_scheduler(runtime)  # its sweep is due in a second
    before = {job.id for job in scheduler.get_jobs()}
    _tick_job(runtime, scheduler)
    assert {job.id for job in scheduler.get_jobs()} == before, "nothing added beside the sweep about to run"
