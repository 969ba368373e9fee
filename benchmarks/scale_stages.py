"""Where a sweep's time goes: wall and CPU seconds per stage (CPU: the calling thread's,
so a busy machine does not inflate it), summed over threads, and the number
of Prometheus requests and bytes written. The benchmark wraps the stage functions it
names here (in its own process only); nothing in Vigil knows about it."""
from __future__ import annotations

import functools
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


class StageClock:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.seconds: dict[str, float] = defaultdict(float)
        self.cpu: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._undo: list[Callable[[], None]] = []

    def reset(self) -> None:
        with self._lock:
            self.seconds.clear()
            self.cpu.clear()
            self.calls.clear()

    def add(self, stage: str, seconds: float, cpu: float = 0.0) -> None:
        with self._lock:
            self.seconds[stage] += seconds
            self.cpu[stage] += cpu
            self.calls[stage] += 1

    @contextmanager
    def timing(self, stage: str) -> Iterator[None]:
        t0, c0 = time.perf_counter(), time.thread_time()
        try:
            yield
        finally:
            self.add(stage, time.perf_counter() - t0, time.thread_time() - c0)

    def wrap(self, owner: Any, attr: str, stage: str) -> None:
        """Time every call of owner.attr (a class or module attribute) as `stage`."""
        original = getattr(owner, attr)

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            with self.timing(stage):
                return original(*args, **kwargs)

        setattr(owner, attr, timed)
        self._undo.append(lambda: setattr(owner, attr, original))

    def unwrap_all(self) -> None:
        while self._undo:
            self._undo.pop()()

    def summary(self) -> str:
        order = sorted(self.seconds.items(), key=lambda kv: -kv[1])
        return " ".join(f"{k}={v:.1f}s(cpu {self.cpu[k]:.1f}s)/{self.calls[k]}" for k, v in order)


def instrument(clock: StageClock) -> None:
    """The stages the issue measured: Prometheus HTTP, registry, samples, reference, drift,
    anomaly scoring, drift reports, store transactions."""
    import monitor.cycle.detect as detect
    from monitor.cycle.drift_report import DriftReports
    from monitor.cycle.reference import ReferenceChooser
    from monitor.cycle.samples import SampleReader
    from monitor.sources.prometheus import PrometheusSource
    from monitor.sources.registry import RegistrySource

    clock.wrap(PrometheusSource, "_request", "prometheus_http")
    for name in ("alias_version", "get_version", "aliases", "all_aliases"):
        if hasattr(RegistrySource, name):
            clock.wrap(RegistrySource, name, "registry")
    clock.wrap(SampleReader, "window", "samples")
    clock.wrap(ReferenceChooser, "choose", "reference")
    clock.wrap(detect, "detect_sample_drift", "drift")
    clock.wrap(detect, "_anomalies", "anomaly")
    clock.wrap(DriftReports, "save_once", "drift_report")
