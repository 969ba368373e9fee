"""A model's own cycle job (one job per model, no sweep) among replicas runs under the
token it holds when it starts; a lease that lapses between the ownership check and the
token read skips the cycle instead of running it unfenced next to the new owner's."""
from __future__ import annotations

from typing import Any

from monitor.daemon import Runtime, _cycle_job
from monitor.ownership import Ownership
from tests.helpers_vigil import MODEL, make_config, make_vigil


class LapsingLease(Ownership):
    """Held when asked whether it is owned; lapsed (monotonic deadline passed) by the token read."""

    renew_every = 20.0

    def __init__(self) -> None:
        super().__init__()
        self.asked = 0

    def owns(self, model: str) -> bool:
        return self.token(model) is not None

    def token(self, model: str) -> int | None:
        self.asked += 1
        return 7 if self.asked == 1 else None


def test_a_lease_lapsing_as_the_cycle_job_starts_runs_no_unfenced_cycle(tmp_path, monkeypatch):
    vigil = make_vigil(make_config(tmp_path))
    runtime = Runtime(vigil, None)
    runtime.owner = LapsingLease()
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(vigil, "run_cycle", lambda model, **kw: calls.append({"model": model, **kw}))
    _cycle_job(runtime, MODEL)
    assert all(c.get("token") is not None for c in calls), calls


def test_alone_on_sqlite_the_cycle_job_runs_without_a_token(tmp_path, monkeypatch):
    vigil = make_vigil(make_config(tmp_path))
    runtime = Runtime(vigil, None)
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(vigil, "run_cycle", lambda model, **kw: calls.append({"model": model, **kw}))
    _cycle_job(runtime, MODEL)
    assert calls == [{"model": MODEL, "token": None}]


def test_a_models_cycle_never_runs_twice_at_once_when_a_reload_replaced_its_job(tmp_path, monkeypatch):
    """A reload that removes a model and one that adds it back give it a new scheduler job,
    and the scheduler's one-instance rule holds per job: the new job's cycle ran beside the
    old one's, still running, both writing the same model's incident and messages. A cycle
    whose model is still being cycled is now skipped, like a job that misfired; so is the
    model in a sweep (a reload switching `schedule.sweep` on)."""
    import threading

    vigil = make_vigil(make_config(tmp_path))
    runtime = Runtime(vigil, None)
    entered, release, calls = threading.Event(), threading.Event(), []

    def slow_cycle(model: str, **kw: Any) -> None:
        calls.append(model)
        entered.set()
        release.wait(10)

    monkeypatch.setattr(vigil, "run_cycle", slow_cycle)
    swept: list[list[str]] = []
    monkeypatch.setattr(vigil, "run_sweep", lambda models, token=None: swept.append(list(models)) or [])
    old_job = threading.Thread(target=_cycle_job, args=(runtime, MODEL))
    old_job.start()
    try:
        assert entered.wait(10)
        _cycle_job(runtime, MODEL)  # the re-added model's new job, on time
        from monitor.daemon import _sweep_job
        _sweep_job(runtime)
    finally:
        release.set()
        old_job.join(10)
    assert calls == [MODEL], "two cycles of one model ran at once"
    assert swept == [[]], "the sweep cycled the model whose cycle still ran"
    _cycle_job(runtime, MODEL)  # once the old one ended, the next runs
    assert calls == [MODEL, MODEL]
