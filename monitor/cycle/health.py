"""What each source said the last time a stage used it, or the probe asked it: /readyz
shows it, and `vigil_source_up` exports it. A stage or the probe (at start and every
interval, so `vigil serve`, which runs no cycles, knows too) marks a source; nothing
else writes here."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from monitor.metrics import VigilMetrics
from monitor.sources.errors import SourceState, SourceStatus


@dataclass
class SourceHealth:
    states: dict[str, SourceState]
    metrics: VigilMetrics
    clock: Callable[[], float]

    @classmethod
    def for_sources(cls, urls: dict[str, str | None], metrics: VigilMetrics, clock: Callable[[], float]
                    ) -> SourceHealth:
        """One UNKNOWN state per configured source (a source without a URL is not used)."""
        states = {name: SourceState(name, SourceStatus.UNKNOWN, url) for name, url in urls.items() if url}
        return cls(states, metrics, clock)

    def mark(self, name: str, up: bool, detail: str = "") -> None:
        old = self.states.get(name)
        self.states[name] = SourceState(name, SourceStatus.UP if up else SourceStatus.DOWN, old.url if old else "",
                                        detail, self.clock())
        self.metrics.source_up.labels(name).set(1 if up else 0)

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
