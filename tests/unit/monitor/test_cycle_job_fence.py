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
