"""What the chaos benchmark prints: the plan, one row per fault, one row per model, the
notes that explain any nonzero count, and the final line."""
from __future__ import annotations

import datetime as dt
import math

from benchmarks.chaos_faults import FaultRecord
from benchmarks.chaos_scenario import Scenario
from benchmarks.chaos_takeover import Takeover
from benchmarks.chaos_verdict import Verdict


def hhmm(t: float | None) -> str:
    return "-" if t is None else dt.datetime.fromtimestamp(t, dt.UTC).strftime("%H:%M")


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(header[i]), *(len(r[i]) for r in rows)) if rows else len(header[i]) for i in range(len(header))]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [line.format(*header), line.format(*("-" * w for w in widths))]
    out += [line.format(*r) for r in rows]
    return "\n".join(x.rstrip() for x in out)


def fault_table(records: list[FaultRecord], takeovers: list[Takeover], scenario: Scenario) -> str:
    by_label = {t.kill.label: t for t in takeovers}
    rows = []
    for rec in records:
        notes = rec.notes
        for k in rec.kills:
            t = by_label.get(k.label)
            if t is not None:
                took = "never" if t.seconds is None else f"{t.seconds:.1f} s"
                notes += f"; takeover {took} by {t.by} ({len(t.models)} model(s))" + (f": {t.note}" if t.note else "")
        if rec.model_index is not None:
            notes += f"; aimed at {scenario.models[rec.model_index].name}'s rollback"
        rows.append([str(rec.n), rec.kind, hhmm(rec.at), rec.target, rec.outcome, notes])
    return _table(rows, ["#", "fault", "at", "target", "outcome", "notes"])


def model_table(verdict: Verdict) -> str:
    rows = []
    for mv in verdict.models:
        p = mv.plan
        deploy = f"v{p.bad_version or 2} at {hhmm(p.deploy_at)}" if p.deploy_at else "-"
        writes = ",".join(f"v{v}" for v in mv.writes) or "-"
        done = ",".join(f"v{v}" for v in mv.done_intents) or "-"
        rows.append([p.name, p.kind, deploy, str(mv.incidents), writes, done, f"v{mv.final_alias}",
                     str(mv.lost), str(mv.duplicate_rollbacks), str(mv.wrong_rollbacks), "; ".join(mv.notes)])
    return _table(rows, ["model", "kind", "deploy", "incidents", "alias writes", "done intents", "ends on",
                         "lost", "dup rb", "wrong rb", "notes"])


def takeover_figure(takeovers: list[Takeover], run_end: float) -> tuple[float, str]:
    """The largest takeover time, and a note when a model never ran again (then the
    figure is a lower bound: the wait until the run ended)."""
    if not takeovers:
        return 0.0, "no replica was killed"
    worst, note = 0.0, ""
    for t in takeovers:
        s = t.seconds if t.seconds is not None else run_end - t.kill.at
        if t.seconds is None:
            note = "a killed replica's model never ran again before the end: takeover_s is a lower bound"
        worst = max(worst, s)
    return worst, note


def final_line(verdict: Verdict, takeover_s: float) -> str:
    x = takeover_s if math.isfinite(takeover_s) else -1.0
    return (f"lost_alerts={verdict.lost_alerts} duplicate_posts={verdict.duplicate_posts} "
            f"duplicate_rollbacks={verdict.duplicate_rollbacks} wrong_rollbacks={verdict.wrong_rollbacks} "
            f"takeover_s={x:.1f}")
