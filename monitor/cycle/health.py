"""What each source said the last time a stage used it, or the probe asked it: /readyz
shows it, and `vigil_source_up` exports it. A stage or the probe (at start and every
interval, so `vigil serve`, which runs no cycles, knows too) marks a source; nothing
else writes here."""
from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from monitor.metrics import VigilMetrics
from monitor.sources.errors import SourceState, SourceStatus

BASELINE_SOURCES = frozenset({"loki", "tempo"})  # read twice a refit: the window and the one before


@dataclass
class SourceHealth:
    states: dict[str, SourceState]
    metrics: VigilMetrics
    clock: Callable[[], float]

    @classmethod
    def for_sources(cls, urls: dict[str, str | None], metrics: VigilMetrics, clock: Callable[[], float]
                    ) -> SourceHealth:
        """One UNKNOWN state per configured source (a source without a URL is not used).
        Their refresh-failure counters start at 0, so `rate()` sees the first failure."""
        states = {name: SourceState(name, SourceStatus.UNKNOWN, url) for name, url in urls.items() if url}
        # The metrics outlive a reload: a source it removed (say a Loki that was down) kept
        # its last vigil_source_up, and VigilSourceDown fired until a restart. Only those
        # named here go: `rollback:<layer>` and `schedule` are no configured URL, and their
        # last word (a layer that failed a rollback) stands until they are used again.
        for family in metrics.source_up.collect():
            for gone in {s.labels["source"] for s in family.samples} & urls.keys() - states.keys():
                with contextlib.suppress(KeyError):
                    metrics.source_up.remove(gone)
        for name in states.keys() & BASELINE_SOURCES:
            metrics.baseline_refresh_failures.labels(name)
        return cls(states, metrics, clock)

    def mark(self, name: str, up: bool, detail: str = "") -> None:
        old = self.states.get(name)
        self.states[name] = SourceState(name, SourceStatus.UP if up else SourceStatus.DOWN, old.url if old else "",
                                        detail, self.clock())
        self.metrics.source_up.labels(name).set(1 if up else 0)

    def forget(self, name: str) -> None:
        """Drop a source this process no longer watches (a model's `registry:<model>` once the
        model left it): its last word would read down here while its new owner sees it fine."""
        self.states.pop(name, None)
        with contextlib.suppress(KeyError):
            self.metrics.source_up.remove(name)

    def adopt(self, state: SourceState) -> None:
        """What a sweep worker process (monitor/sweep_pool.py) saw of a source, when newer
        than what this process knows: /readyz is served here, not in the workers."""
        old = self.states.get(state.name)
        if old is not None and (state.checked_at or 0.0) <= (old.checked_at or 0.0):
            return
        self.states[state.name] = state
        self.metrics.source_up.labels(state.name).set(1 if state.status == SourceStatus.UP else 0)

    def changed_since(self, seen: dict[str, float]) -> list[SourceState]:
        """The states checked after `seen` (name -> checked_at), which it then records."""
        out = [s for s in self.states.values() if s.checked_at is not None and s.checked_at > seen.get(s.name, -1.0)]
        seen.update({s.name: s.checked_at for s in out if s.checked_at is not None})
        return out

    def probe(self, clients: dict[str, Any]) -> None:
        """Ask each configured source that can answer (`ready()`) how it is now."""
        for name, client in clients.items():
            ready = getattr(client, "ready", None)
            if name not in self.states or ready is None:
                continue
            try:
                state = ready()
            except Exception as e:  # a probe that breaks says the source is down, never stops the others
                self.mark(name, False, f"{type(e).__name__}: {e}")
                continue
            self.mark(name, state.status == SourceStatus.UP, state.detail)

    def is_down(self, name: str) -> bool:
        state = self.states.get(name)
        return state is not None and state.status == SourceStatus.DOWN

    def snapshot(self) -> dict[str, Any]:
        return dict(self.states)
