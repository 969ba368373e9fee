"""Are the cycles alive? What each model's cycles did lately, and the readiness rule on it.

A Vigil whose every cycle fails (a full disk, a store that refuses writes) raises no
incident and sends nothing, so only its own health can tell: `/readyz` turns 503 after
`schedule.unready_after_failed_cycles` failed cycles in a row, or when a model's last
successful cycle is older than `schedule.unready_after_intervals` intervals, and two gauges
(`vigil_last_successful_cycle_timestamp_seconds`, `vigil_consecutive_failed_cycles`) let
Prometheus alert on a stuck Vigil.

A process that runs no cycles (`vigil serve`) sees only what the daemons wrote to the
store (`model_state.last_cycle_at`, written when a cycle commits), so its staleness check
reads the store; failures in a row are known only to the process that had them.
"""
from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, replace

from prometheus_client import Gauge
from sqlalchemy import select

from monitor.store.repository import Store
from monitor.store.tables import ModelStateRow

ERROR_CHARS = 300  # a SQLAlchemy error drags its SQL statement along: the first line says enough


@dataclass(frozen=True)
class ModelLiveness:
    consecutive_failures: int = 0
    last_error: str | None = None
    last_success_at: float | None = None  # the cycle time of the last cycle that finished


@dataclass(frozen=True)
class ReadinessRules:
    max_failed_cycles: int  # this many failed cycles in a row: not ready
    stale_after: float  # seconds without a successful cycle: not ready


def describe(error: BaseException) -> str:
    """One line: SQLAlchemy wraps the driver's error ("database or disk is full") in a
    message about autoflush and the SQL, so the driver's own is the one people need."""
    inner = getattr(error, "orig", None) or error
    lines = [x for x in str(inner).strip().splitlines() if x.strip()]
    return f"{type(inner).__name__}: {lines[0] if lines else ''}"[:ERROR_CHARS]


class CycleLiveness:
    """Cycle outcomes per model, kept in step with their gauges. Thread-safe: the scheduler's
    workers write, the API reads. It lives with the metrics, so a configuration reload (a
    new Vigil sharing the metrics) keeps the counts."""

    def __init__(self, last_success: Gauge, failures: Gauge) -> None:
        self._last_success, self._failures = last_success, failures
        self._lock = threading.Lock()
        self._models: dict[str, ModelLiveness] = {}
        self.started_at: float | None = None  # when this process began to watch (None: nobody said)
        self.stopping = False  # a shutdown is under way

    def start(self, now: float) -> None:
        """A daemon or an API process starts watching: staleness counts from here at the earliest."""
        self.started_at = now

    def succeeded(self, model: str, t: float) -> None:
        with self._lock:
            old = self._models.get(model, ModelLiveness())
            # max: a cycle whose clock went back is still a success, not a step back in time
            last = t if old.last_success_at is None else max(old.last_success_at, t)
            self._models[model] = ModelLiveness(0, None, last)
        self._last_success.labels(model).set(last)
        self._failures.labels(model).set(0)

    def failed(self, model: str, error: BaseException) -> None:
        with self._lock:
            old = self._models.get(model, ModelLiveness())
            new = replace(old, consecutive_failures=old.consecutive_failures + 1, last_error=describe(error))
            self._models[model] = new
        self._failures.labels(model).set(new.consecutive_failures)

    def saw_stored(self, stored: dict[str, float | None]) -> None:
        """Merge what the store says (cycles another process ran count as successes too)."""
        newer: dict[str, float] = {}
        with self._lock:
            for model, t in stored.items():
                old = self._models.get(model, ModelLiveness())
                if t is not None and (old.last_success_at is None or t > old.last_success_at):
                    self._models[model] = replace(old, last_success_at=t)
                    newer[model] = t
        for model, t in newer.items():
            self._last_success.labels(model).set(t)

    def forget(self, model: str) -> None:
        """A model no longer configured: drop it, and its series, so no alert reads it as stuck."""
        with self._lock:
            self._models.pop(model, None)
        for gauge in (self._last_success, self._failures):
            with contextlib.suppress(KeyError):  # never had a series
                gauge.remove(model)

    def snapshot(self) -> dict[str, ModelLiveness]:
        with self._lock:
            return dict(self._models)


def stored_last_cycles(store: Store, models: list[str]) -> dict[str, float | None]:
    """`model_state.last_cycle_at` per model (None: never cycled), one query."""
    with store.tx() as s:
        rows = s.execute(select(ModelStateRow.model, ModelStateRow.last_cycle_at)
                         .where(ModelStateRow.model.in_(models))).all()
    found = {str(m): (float(t) if t is not None else None) for m, t in rows}
    return {m: found.get(m) for m in models}


def cycle_problems(models: list[str], seen: dict[str, ModelLiveness], now: float, started_at: float | None,
                   rules: ReadinessRules) -> list[str]:
    """Why the cycles are not healthy, one line per model (empty: healthy). Staleness counts
    from the later of the last success and the process start, so a process just started
    is not stale before a cycle could have run; with no start known it is not judged."""
    problems = []
    for model in models:
        info = seen.get(model, ModelLiveness())
        if info.consecutive_failures >= rules.max_failed_cycles:
            problems.append(f"{model}: {info.consecutive_failures} cycles in a row failed "
                            f"(limit {rules.max_failed_cycles}), last error: {info.last_error}")
        if started_at is None:
            continue
        since = started_at if info.last_success_at is None else max(info.last_success_at, started_at)
        if now - since > rules.stale_after:
            if info.last_success_at is None:
                what = f"no successful cycle in the {now - started_at:.0f} s since start"
            else:
                what = f"last successful cycle {now - info.last_success_at:.0f} s ago"
            problems.append(f"{model}: {what} (limit {rules.stale_after:.0f} s)")
    return problems
