"""Vigil replicas as real processes (`python -m monitor.cli run --no-api --clock-file F`), and
the replay clock they share.

Each start of a replica is an `Instance` with its own JSON log file (DEBUG: every finished
cycle is a `cycle done` line with the model and the wall time), so the verdict can tell
which process ran which cycle. A replica is stopped with SIGTERM (bounded, then SIGKILL),
killed with SIGKILL, or started with `VIGIL_FAILPOINTS` so that it kills itself at a
named point; the benchmark only ever signals the processes it started, by pid.
"""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from monitor.clock import FileClock
from monitor.failpoints import ENV as FAILPOINTS_ENV

REPO = Path(__file__).resolve().parents[1]
STOP_TIMEOUT_S = 30.0


@dataclass
class Instance:
    label: str  # "A#2": replica A, its second process
    pid: int
    started_at: float  # wall clock
    log_path: Path
    failpoints: str | None
    ended_at: float | None = None
    returncode: int | None = None
    how: str = ""  # "kill -9", "SIGTERM", "fail point", "" while running


class Replica:
    """One replica's successive processes; at most one runs at a time."""

    def __init__(self, name: str, config_path: Path, clock_path: Path, logdir: Path, env: dict[str, str]) -> None:
        self.name, self.config_path, self.clock_path, self.logdir = name, config_path, clock_path, logdir
        self.env = env
        self.instances: list[Instance] = []
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._closed = False

    @property
    def current(self) -> Instance | None:
        return self.instances[-1] if self.instances and self.instances[-1].ended_at is None else None

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, failpoints: str | None = None) -> Instance:
        with self._lock:
            if self._closed:  # the run is being torn down: a late restart must not outlive it
                raise RuntimeError(f"replica {self.name} is closed")
            assert not self.alive(), f"replica {self.name} is already running"
            label = f"{self.name}#{len(self.instances) + 1}"
            log_path = self.logdir / f"replica-{label.replace('#', '-')}.log"
            env = {k: v for k, v in {**os.environ, **self.env}.items() if k != FAILPOINTS_ENV}
            if failpoints:
                env[FAILPOINTS_ENV] = failpoints
            cmd = [sys.executable, "-m", "monitor.cli", "--log-level", "DEBUG", "--log-format", "json", "run",
                   "--config", str(self.config_path), "--no-api", "--clock-file", str(self.clock_path)]
            # Its own session: a Ctrl-C in the terminal reaches the benchmark, which stops
            # the replicas itself, in order. The child keeps its own copy of the log's descriptor.
            with open(log_path, "wb") as logf:
                self._proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=logf,
                                              stderr=subprocess.STDOUT, start_new_session=True)
            inst = Instance(label, self._proc.pid, time.time(), log_path, failpoints)
            self.instances.append(inst)
            return inst

    def _ended(self, how: str) -> Instance | None:
        inst = self.current
        if inst is None or self._proc is None or self._proc.poll() is None:
            return None
        inst.ended_at, inst.returncode, inst.how = time.time(), self._proc.returncode, how
        return inst

    def close(self) -> None:
        """Stop for good: no start after this (teardown; a fault thread may still be running)."""
        with self._lock:
            self._closed = True
        self.terminate()

    def poll_exit(self, how: str = "exited") -> Instance | None:
        """The instance that just ended on its own, if it did."""
        with self._lock:
            return self._ended(how)

    def kill9(self) -> Instance | None:
        """SIGKILL now (a crash); the instance, with its end time."""
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                return None
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._proc.pid, signal.SIGKILL)
            self._proc.wait(timeout=10)
            return self._ended("kill -9")

    def terminate(self, timeout_s: float = STOP_TIMEOUT_S) -> Instance | None:
        """SIGTERM and wait (bounded); SIGKILL if it does not stop in time."""
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                return self._ended("exited")
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._proc.pid, signal.SIGTERM)
            try:
                self._proc.wait(timeout=timeout_s)
                how = "SIGTERM"
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self._proc.pid, signal.SIGKILL)
                self._proc.wait(timeout=10)
                how = f"SIGTERM, then SIGKILL after {timeout_s:.0f} s"
            return self._ended(how)


class Pacer:
    """The replay clock: the main thread steps it once per real interval; the fault
    thread waits for steps and may shift it (a clock jump)."""

    def __init__(self, clock_path: Path, start: float, step_s: float) -> None:
        self.clock_path, self.start, self.step_s = clock_path, start, step_s
        self.step = 0
        self.offset = 0.0  # seconds added to the scenario's time (a clock jump)
        self.stop = threading.Event()
        self._cond = threading.Condition()
        FileClock.write(clock_path, start)

    def scenario_time(self, step: int | None = None) -> float:
        return self.start + (self.step if step is None else step) * self.step_s

    def now(self) -> float:
        """What the replicas read: scenario time, shifted while the clock is jumped."""
        return self.scenario_time() + self.offset

    def advance(self) -> None:
        with self._cond:
            self.step += 1
            FileClock.write(self.clock_path, self.now())
            self._cond.notify_all()

    def shift(self, offset: float) -> None:
        with self._cond:
            self.offset = offset
            FileClock.write(self.clock_path, self.now())

    def wait_step(self, step: int) -> bool:
        """Block until the clock reaches `step`; False if the run is stopping."""
        with self._cond:
            while self.step < step and not self.stop.is_set():
                self._cond.wait(timeout=0.5)
        return not self.stop.is_set()

    def halt(self) -> None:
        self.stop.set()
        with self._cond:
            self._cond.notify_all()
