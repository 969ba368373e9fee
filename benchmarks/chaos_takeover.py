"""Who ran which cycle, and how long a killed replica's models went without one.

Each replica process logs JSON at DEBUG; a finished cycle is a `cycle done` line with the
model and the wall time (`ts`). A kill's *takeover* is, over the models the killed process
owned, the longest wait from the kill until a cycle of that model finished in any other
process (the other replica, or the killed one's restart).

Owned models: when the store has lease tables (`model_leases` with `owner`, `replicas`
with `replica_id` and `pid`), the leases the killed pid held; without them every replica
runs every model, so the models it finished a cycle of in the last two intervals.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from benchmarks.chaos_replicas import Instance


@dataclass(frozen=True)
class CycleSeen:
    wall: float
    model: str
    t: float  # the replay time the cycle ran at
    label: str  # which process


@dataclass(frozen=True)
class Kill:
    label: str
    pid: int
    at: float  # wall clock
    owned: list[str] | None  # from the lease tables; None when there are none


@dataclass(frozen=True)
class Takeover:
    kill: Kill
    seconds: float | None  # None: some owned model never ran again before the end
    models: list[str]
    by: str  # which process(es) took the models over
    note: str = ""


def _records(path: Path) -> list[dict[str, Any]]:
    out = []
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return []
    for line in lines:
        if not line.startswith("{"):
            continue  # a traceback or a library's own print
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def _wall(ts: str | float) -> float:
    """A log record's time: ISO 8601 (`2026-12-03T15:46:48.264Z`, Vigil's JSON logs) or epoch seconds."""
    if isinstance(ts, int | float):
        return float(ts)
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def read_cycles(instances: list[Instance]) -> list[CycleSeen]:
    seen = []
    for inst in instances:
        for r in _records(inst.log_path):
            if r.get("msg") == "cycle done":
                seen.append(CycleSeen(_wall(r["ts"]), str(r.get("model")), float(r.get("t") or 0), inst.label))
    return sorted(seen, key=lambda c: c.wall)


def count_messages(instances: list[Instance], msg: str) -> int:
    return sum(1 for inst in instances for r in _records(inst.log_path) if r.get("msg") == msg)


def wait_logged(inst: Instance, msg: str, deadline: float) -> bool:
    """Poll the instance's log until a line with `msg` appears (True) or the deadline
    (looked at once when the deadline has passed)."""
    needle = f'"msg": "{msg}"'
    while True:
        try:
            if needle in inst.log_path.read_text(errors="replace"):
                return True
        except OSError:
            pass
        if time.time() >= deadline:
            return False
        time.sleep(0.2)


def owned_models(conninfo: str, pid: int) -> list[str] | None:
    """The models whose lease the process `pid` holds; None if the store has no leases or
    none matched."""
    import psycopg

    try:
        with psycopg.connect(conninfo, connect_timeout=5) as conn:
            rows = conn.execute("SELECT l.model FROM model_leases l JOIN replicas r ON l.owner = r.replica_id "
                                "WHERE r.pid = %s ORDER BY l.model", (pid,)).fetchall()
    except psycopg.Error:
        return None  # no lease tables (yet): every replica runs every model
    # None, not [], when nothing matched: the lease tables may name replicas differently,
    # and the log (what the process cycled last) says the same thing.
    return [str(r[0]) for r in rows] or None


def takeover(kill: Kill, cycles: list[CycleSeen], interval_s: float, all_models: list[str], end: float) -> Takeover:
    owned = kill.owned
    if owned is None:
        since = kill.at - 2 * interval_s - 1
        recent = {c.model for c in cycles if c.label == kill.label and since <= c.wall <= kill.at}
        owned = sorted(recent) or list(all_models)
    if not owned:
        return Takeover(kill, 0.0, [], "-", "owned no model")
    waits: dict[str, float | None] = {}
    by: set[str] = set()
    for m in owned:
        nxt = next((c for c in cycles if c.model == m and c.wall > kill.at and c.label != kill.label), None)
        waits[m] = None if nxt is None else nxt.wall - kill.at
        if nxt is not None:
            by.add(nxt.label)
    missing = sorted(m for m, w in waits.items() if w is None)
    if missing:
        return Takeover(kill, None, owned, ",".join(sorted(by)) or "-",
                        f"{len(missing)} model(s) never ran again in {end - kill.at:.0f} s: {', '.join(missing)}")
    return Takeover(kill, max(w for w in waits.values() if w is not None), owned, ",".join(sorted(by)))
