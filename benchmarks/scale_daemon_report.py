"""What the daemon scale benchmark reads back: each replica's JSON log (the daemon's own
lines: `cycle done`, `sweep done`, `scheduled run missed`, `outbox round`, `model
ownership changed`) and the harness' per-second samples (outbox rows, RSS), turned into
one replica's figures over the measured window. Pure: no process, no store.
"""
from __future__ import annotations

import datetime as dt
import json
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

WANTED = frozenset({"cycle done", "sweep done", "scheduled run missed", "outbox round", "model ownership changed",
                    "cycle stopped: lease lost", "cycle failed", "sweep failed"})


@dataclass(frozen=True)
class LogLine:
    ts: float  # wall clock, when the line was written
    message: str
    fields: dict[str, Any]


class LogTail:
    """A replica's JSON log read incrementally: only the lines the report needs are kept."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lines: list[LogLine] = []
        self._offset = 0

    def read(self) -> list[LogLine]:
        """The new wanted lines since the last read (a half-written last line waits)."""
        if not self.path.exists():
            return []
        with self.path.open("rb") as f:
            f.seek(self._offset)
            chunk = f.read()
        end = chunk.rfind(b"\n") + 1
        self._offset += end
        new = [line for raw in chunk[:end].splitlines() if (line := parse_line(raw)) is not None]
        self.lines.extend(new)
        return new


def parse_line(raw: bytes) -> LogLine | None:
    try:
        d = json.loads(raw)
    except ValueError:  # a traceback or a library's plain line: not ours to count
        return None
    if not isinstance(d, dict) or d.get("msg") not in WANTED:
        return None
    ts = dt.datetime.fromisoformat(str(d["ts"]).replace("Z", "+00:00")).timestamp()
    return LogLine(ts, str(d["msg"]), d)


def owned_models(lines: Iterable[LogLine], everything: Sequence[str], leased: bool) -> set[str]:
    """What the replica owned at the end: every model alone on SQLite; with leases, its
    acquisitions minus its releases and losses, replayed in order."""
    if not leased:
        return set(everything)
    owned: set[str] = set()
    for line in lines:
        if line.message == "model ownership changed":
            owned |= set(line.fields.get("acquired") or [])
            owned -= set(line.fields.get("released") or []) | set(line.fields.get("lost") or [])
    return owned


def last_ownership_change(lines: Iterable[LogLine]) -> float | None:
    times = [line.ts for line in lines if line.message == "model ownership changed"]
    return max(times) if times else None


def sweep_scheduled_at(line: LogLine) -> float:
    """When a sweep was due: it ended at `ts`, took `duration_s`, started `lag_s` late."""
    return line.ts - float(line.fields.get("duration_s", 0.0)) - float(line.fields.get("lag_s", 0.0))


@dataclass
class Samples:
    """The harness' per-second samples: (wall time, pending outbox rows), peak RSS per pid."""
    outbox: list[tuple[float, int]] = field(default_factory=list)
    peak_rss_kb: dict[int, int] = field(default_factory=dict)


@dataclass
class ReplicaFigures:
    name: str
    models_owned: int
    due: int
    ran: int
    missed: dict[str, int]
    cycles: list[int]  # per owned model, in the window
    never: int  # owned models with no cycle in the window
    sweep_s: list[float]
    lag_max_s: float
    outbox_max_pending: int
    outbox_max_gap_s: float
    outbox_rounds: int
    outbox_longest_pending_s: float  # the longest stretch of samples with rows waiting
    peak_rss_mb: float
    lease_lost: int
    failed: int
    cut_short: int = 0  # sweeps in the window that ran fewer cycles than the models they began with

    def summary(self) -> str:
        cyc = self.cycles or [0]
        return (f"replica={self.name} models_owned={self.models_owned} due={self.due} ran={self.ran} "
                f"missed={sum(self.missed.values())} min_cycles_per_model={min(cyc)} "
                f"sweep_s_median={_median(self.sweep_s):.1f} sweep_s_max={max(self.sweep_s, default=0.0):.1f} "
                f"outbox_max_pending={self.outbox_max_pending} outbox_max_gap_s={self.outbox_max_gap_s:.1f} "
                f"peak_rss_mb={self.peak_rss_mb:.0f}")

    def detail(self) -> str:
        cyc = self.cycles or [0]
        missed = ", ".join(f"{k} {v}" for k, v in sorted(self.missed.items())) or "none"
        return (f"replica {self.name}: {self.models_owned} models owned; sweeps due {self.due}, ran {self.ran}, "
                f"missed {missed} (vigil_cycles_missed_total by reason); cycles per model min/median/max "
                f"{min(cyc)}/{_median([float(c) for c in cyc]):g}/{max(cyc)}, {self.never} owned models never ran; "
                f"{self.cut_short} sweeps ran fewer cycles than models; "
                f"sweep s median/max {_median(self.sweep_s):.1f}/{max(self.sweep_s, default=0.0):.1f}; "
                f"max lag {self.lag_max_s:.1f} s; outbox rounds {self.outbox_rounds}, longest gap "
                f"{self.outbox_max_gap_s:.1f} s, max pending {self.outbox_max_pending}, longest stretch with rows "
                f"pending {self.outbox_longest_pending_s:.0f} s; cycles stopped by a lost "
                f"lease {self.lease_lost}, failed {self.failed}; peak RSS {self.peak_rss_mb:.0f} MB")


def _median(xs: Sequence[float]) -> float:
    return float(statistics.median(xs)) if xs else 0.0


def due_in(scheduled: Sequence[float], interval: float, start: float, end: float) -> int:
    """Runs due in [start, end) on the job's grid (its first scheduled time + k·interval)."""
    if not scheduled:
        return 0
    first = min(scheduled)
    k0 = max(0, -int((first - start) // interval))  # first k with first + k·interval >= start
    n = 0
    k = k0
    while first + k * interval < end:
        n += first + k * interval >= start - 1e-6
        k += 1
    return n


@dataclass(frozen=True)
class Window:
    start: float  # wall clock
    end: float
    interval: float

    def holds(self, t: float) -> bool:
        # The harness opens the window half an interval away from every replica's sweep
        # grid, so a run's scheduled time (known to a few ms) is never near an edge.
        return self.start <= t < self.end


def longest_stretch(sampled: Sequence[tuple[float, int]]) -> float:
    """The longest run of consecutive samples with rows pending, first to last sample of it."""
    best, since = 0.0, None
    for t, n in sampled:
        if n > 0:
            since = t if since is None else since
            best = max(best, t - since)
        else:
            since = None
    return best


def quiet_moment(grids: Sequence[float], interval: float, after: float) -> float:
    """The first moment after `after` half-way between sweeps: the wall time in the next
    interval farthest from every replica's grid (a scheduled time of each, mod interval)."""
    if not grids:
        return after

    def distance(t: float) -> float:
        return min(min((t - g) % interval, (g - t) % interval) for g in grids)
    steps = [after + interval * k / 200 for k in range(200)]
    return max(steps, key=distance)


def figures(name: str, lines: Sequence[LogLine], window: Window, models: Sequence[str], leased: bool,
            cycle_started_at: Any, samples: Samples, pids: Sequence[int]) -> ReplicaFigures:
    """One replica over the window. `cycle_started_at(t)`: the wall time a cycle at
    scenario time `t` started (the harness' clock mapping)."""
    owned = owned_models(lines, models, leased)
    sweeps = [line for line in lines if line.message == "sweep done"]
    scheduled = [sweep_scheduled_at(s) for s in sweeps]
    missed_lines = [line for line in lines
                    if line.message == "scheduled run missed" and line.fields.get("job") == "sweep"]
    missed_at = [m.ts - float(m.fields.get("lag_s", 0.0)) for m in missed_lines]
    in_window = [s for s, at in zip(sweeps, scheduled, strict=True) if window.holds(at)]
    missed = Counter(str(m.fields.get("reason")) for m, at in zip(missed_lines, missed_at, strict=True)
                     if window.holds(at))
    per_model = Counter(str(c.fields["model"]) for c in lines
                        if c.message == "cycle done" and window.holds(cycle_started_at(float(c.fields["t"]))))
    cycles = sorted(per_model.get(m, 0) for m in owned)
    rounds = [line.ts for line in lines if line.message == "outbox round" and window.start <= line.ts <= window.end]
    edges = [window.start, *rounds, window.end]  # no round in the window: the whole window is the gap
    gaps = [b - a for a, b in zip(edges, edges[1:], strict=False)]
    lags = [float(s.fields.get("lag_s", 0.0)) for s in in_window]
    lags += [float(m.fields.get("lag_s", 0.0)) for m, at in zip(missed_lines, missed_at, strict=True)
             if window.holds(at)]
    sampled = [(t, n) for t, n in samples.outbox if window.start <= t <= window.end]
    pending = [n for _, n in sampled]
    return ReplicaFigures(
        name=name, models_owned=len(owned),
        due=due_in(scheduled + missed_at, window.interval, window.start, window.end),
        ran=len(in_window), missed=dict(missed), cycles=cycles, never=sum(1 for c in cycles if c == 0),
        sweep_s=[float(s.fields.get("duration_s", 0.0)) for s in in_window], lag_max_s=max(lags, default=0.0),
        outbox_max_pending=max(pending, default=0), outbox_max_gap_s=max(gaps), outbox_rounds=len(rounds),
        outbox_longest_pending_s=longest_stretch(sampled),
        peak_rss_mb=max((samples.peak_rss_kb.get(p, 0) for p in pids), default=0) / 1024.0,
        lease_lost=sum(1 for line in lines if line.message == "cycle stopped: lease lost"
                       and window.start <= line.ts <= window.end),
        failed=sum(1 for line in lines if line.message in ("cycle failed", "sweep failed")
                   and window.start <= line.ts <= window.end),
        cut_short=sum(1 for s in in_window if int(s.fields.get("cycles", 0)) < int(s.fields.get("models", 0))))
