"""A sweep in worker processes (monitor/sweep_pool.py) against a REAL Prometheus (backfilled
with promtool) and a SQLite MLflow registry, on the scale benchmark's scenario (samples,
references, drift, deploys): it reaches the same verdicts as the daemon's own threads,
the daemon's /metrics and /readyz show what the workers saw, and a worker killed
mid-chunk loses no cycle for good and sends nothing twice; the daemon's workers stop
with it, gracefully on SIGTERM and at once when it is killed."""
from __future__ import annotations

import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from benchmarks.scale_scenario import ScaleParams, build, config_data, sweep_times
from detectors.records import FindingKind
from monitor import sweep_pool
from monitor.clock import FileClock
from monitor.config import parse_config
from monitor.failpoints import ENV
from monitor.sources.errors import SourceStatus
from monitor.vigil import Vigil
from tests.fixtures_prometheus import running_prometheus

pytestmark = pytest.mark.integration

PARAMS = ScaleParams(models=4, features=6, rows=400, kpis=1, slos=1, history_h=3.0, drifted=0.5)


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    root = build(PARAMS, tmp_path_factory.mktemp("scale"), log=lambda _: None)
    with running_prometheus(root / "metrics.om", tmp_path_factory.mktemp("prometheus")) as url:
        yield root, url


@pytest.fixture(autouse=True)
def one_model_a_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sweep_pool, "CHUNK_MODELS", (1, 100))  # four chunks: both workers take some


def vigil(scenario: tuple[Path, str], work: Path, processes: int) -> Vigil:
    root, url = scenario
    work.mkdir(parents=True, exist_ok=True)
    data = config_data(PARAMS, root, url, f"sqlite:///{work / 'vigil.db'}", work)
    data["schedule"]["sweep_processes"] = processes
    return Vigil(parse_config(data, "test", str(work)))


def outcome(reports: list) -> dict[str, tuple]:
    return {r.model: (r.step, r.severity, sorted({(str(f.kind), f.entity) for f in r.findings})) for r in reports}


def exposition(v: Vigil) -> set[str]:
    """The daemon's /metrics series (names and labels), without values or timings."""
    lines = generate_latest(v.metrics.registry).decode().splitlines()
    return {line.rsplit(" ", 1)[0] for line in lines
            if line and not line.startswith("#") and "_created" not in line and "duration" not in line}


def openings(work: Path) -> list[str]:
    """The model of each "incident opened" message the Slack sink received."""
    path = work / "notifications.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    return [r["payload"]["model"] for r in records if r["kind"] == "incident" and r["payload"]["status"] == "open"]


DRIFT = {FindingKind.FEATURE_DRIFT, FindingKind.PREDICTION_DRIFT}


def drift_incidents(reports: list) -> list[int]:
    return [r.incident_id for r in reports
            if r.incident_id and any(f.kind in DRIFT for f in r.findings)]


def test_worker_processes_reach_the_same_verdicts_and_metrics_as_threads(scenario, tmp_path: Path) -> None:
    here, there = vigil(scenario, tmp_path / "threads", 0), vigil(scenario, tmp_path / "processes", 2)
    try:
        for t in sweep_times()[:2]:
            ours, theirs = here.run_sweep(t), there.run_sweep(t)
            assert outcome(theirs) == outcome(ours)
            assert len(theirs) == PARAMS.models
        assert len(there.sweep_pool.pids) == 2
        assert os.getpid() not in there.sweep_pool.pids
        assert any(r.incident_id for r in theirs), "the drifted models open incidents"
        assert exposition(there) == exposition(here)
        assert there.health.states["prometheus"].status == SourceStatus.UP  # what the workers saw, on /readyz
        assert there.deliver() == here.deliver() > 0
        # A drift incident's Evidently report, asked for by a worker's cycle, is rendered by the daemon.
        assert there.drift_reports.wait(timeout=300) and here.drift_reports.wait(timeout=300)
        drifted = {name: drift_incidents(reports) for name, reports in (("processes", theirs), ("threads", ours))}
        assert len(drifted["processes"]) == len(drifted["threads"]) > 0, drifted
        assert all(there.store.has_drift_report(i) for i in drifted["processes"])
        assert all(here.store.has_drift_report(i) for i in drifted["threads"])  # each store numbers its own
    finally:
        there.close()
        here.store.close()
        there.store.close()


def test_a_worker_killed_mid_chunk_fails_its_cycles_loudly_and_the_next_sweep_runs_them(
        scenario, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    v = vigil(scenario, tmp_path, 2)
    first, second = sweep_times()[:2]
    try:
        monkeypatch.setenv(ENV, "after_apply_commit=kill@1")  # each worker dies after its first commit
        lost = v.run_sweep(first)
        errors = generate_latest(v.metrics.registry).decode()
        assert len(lost) < PARAMS.models
        everyone = [PARAMS.name(i) for i in range(PARAMS.models)]
        committed = v.store.cycled_at(everyone, first)  # killed after its commit: done, not failed
        unfinished = set(everyone) - {r.model for r in lost} - committed
        assert unfinished, "some cycles never ran"
        for name in set(everyone) - {r.model for r in lost}:
            assert f'vigil_cycle_errors_total{{model="{name}"}} {0.0 if name in committed else 1.0}' in errors
        monkeypatch.delenv(ENV)
        again = v.run_sweep(second)  # a new pool
        assert sorted(r.model for r in again) == [PARAMS.name(i) for i in range(PARAMS.models)]
        v.deliver()
        incidents = {r.model for r in again if r.incident_id}
        announced = openings(tmp_path)
        assert incidents, "the drifted models' incidents are open after the crash"
        assert announced and set(announced) <= incidents
        assert len(announced) == len(set(announced)), announced  # none twice, whichever cycle died
        assert v.store.outbox.counts().get("pending", 0) == 0  # and nothing left behind
    finally:
        v.close()
        v.store.close()


def test_a_worker_that_died_between_sweeps_is_replaced(scenario, tmp_path: Path) -> None:
    v = vigil(scenario, tmp_path, 2)
    first, second = sweep_times()[:2]
    try:
        assert len(v.run_sweep(first)) == PARAMS.models
        victim = sorted(v.sweep_pool.pids)[0]
        os.kill(victim, signal.SIGKILL)  # out of memory while idle
        wait_until("the worker to die", lambda: not alive(victim), 10)
        again = v.run_sweep(second)
        assert sorted(r.model for r in again) == [PARAMS.name(i) for i in range(PARAMS.models)]
        assert len(v.sweep_pool.pids - {victim}) == 2  # its models ran in the new worker
    finally:
        v.close()
        v.store.close()


def test_after_an_upgrade_on_disk_the_sweep_runs_on_the_daemons_threads(
        scenario, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(sweep_pool, "vigil_version", lambda: f"{sweep_pool.RUNNING_VERSION}+upgraded")
    v = vigil(scenario, tmp_path, 2)
    try:
        with caplog.at_level(logging.ERROR, logger="vigil.sweep"):
            reports = v.run_sweep(sweep_times()[0])
        assert sorted(r.model for r in reports) == [PARAMS.name(i) for i in range(PARAMS.models)]
        assert v.sweep_pool.pids == set()  # no worker started with the new code and the old configuration
        assert any("upgraded on disk" in r.getMessage() and r.on_disk.endswith("+upgraded") for r in caplog.records)
    finally:
        v.close()
        v.store.close()


def workers_of(pid: int) -> list[int]:
    """The daemon's sweep workers: its children started by multiprocessing's spawn."""
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        for child in task.read_text().split():
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes() if Path(f"/proc/{child}").exists() else b""
            if b"spawn_main" in cmdline:
                out.append(int(child))
    return out


def alive(pid: int) -> bool:
    """Running (a zombie waiting for a parent to reap it runs nothing)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def swept(db: Path) -> bool:
    """Every model's cycle has committed (read-only: the daemon owns the store)."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as con:
            return con.execute("SELECT count(*) FROM model_state WHERE last_cycle_at IS NOT NULL").fetchone()[0] \
                == PARAMS.models
    except sqlite3.OperationalError:  # no file or no schema yet
        return False


def wait_until(what: str, check, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.parametrize("stop", ["SIGTERM", "kill -9"])
def test_the_daemons_sweep_workers_stop_with_it(scenario, tmp_path: Path, stop: str) -> None:
    """SIGTERM: the running sweep finishes, the workers stop, exit 0. kill -9: the workers
    exit at once, so none finishes its chunk beside the daemon that replaces this one."""
    root, url = scenario
    data = config_data(PARAMS, root, url, f"sqlite:///{tmp_path / 'vigil.db'}", tmp_path)
    data["schedule"].update(sweep=True, sweep_processes=2)
    (tmp_path / "vigil.yaml").write_text(json.dumps(data))
    FileClock.write(tmp_path / "clock", sweep_times()[0])
    proc = subprocess.Popen([sys.executable, "-m", "monitor.cli", "--log-level", "WARNING", "run", "--config",
                             str(tmp_path / "vigil.yaml"), "--no-api", "--clock-file", str(tmp_path / "clock")],
                            cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(Path.cwd())},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        workers = wait_until("a sweep worker", lambda: workers_of(proc.pid), 90)  # one chunk of 4 models: one
        wait_until("the first sweep", lambda: swept(tmp_path / "vigil.db"), 90)
        if stop == "SIGTERM":
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err[-3000:]
            assert "Traceback" not in err, err[-3000:]
        else:
            proc.kill()
            proc.wait(timeout=10)
        wait_until("the workers to exit", lambda: not any(alive(w) for w in workers), 5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_a_replaced_worker_does_not_leave_a_found_alias_down_in_readyz(scenario, tmp_path: Path) -> None:
    """An alias the registry lacked shows as `registry:<model>` down, marked by the worker that
    polls the model; only that worker cleared it once the alias was back, so after it was
    replaced (killed, out of memory) /readyz said "down" until the daemon restarted."""
    from benchmarks.scale_scenario import _mlflow
    from monitor.sources.registry import RegistrySource

    root, url = scenario
    name = PARAMS.name(0)
    tmp_path.mkdir(parents=True, exist_ok=True)
    data = config_data(PARAMS, root, url, f"sqlite:///{tmp_path / 'vigil.db'}", tmp_path)
    data["schedule"]["sweep_processes"] = 2
    data["models"][0]["alias"] = "later"  # not set yet in the registry
    v = Vigil(parse_config(data, "test", str(tmp_path)))
    first, second = sweep_times()[:2]
    try:
        v.run_sweep(first)
        assert v.health.is_down(f"registry:{name}"), v.readiness()
        with RegistrySource(_mlflow(root / "mlflow.db")) as reg:
            reg.set_alias(name, "later", "1")  # someone sets it
        for pid in sorted(v.sweep_pool.pids):
            os.kill(pid, signal.SIGKILL)
            wait_until("the worker to die", lambda p=pid: not alive(p), 10)
        v.run_sweep(second)
        assert not v.health.is_down(f"registry:{name}"), v.readiness()[f"registry:{name}"]
    finally:
        v.close()
        v.store.close()
        with RegistrySource(_mlflow(root / "mlflow.db")) as reg:  # the scenario is the module's
            reg.delete_alias(name, "later")
