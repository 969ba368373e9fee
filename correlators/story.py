"""An open incident's story across cycles: each signal's latest finding, dated from when it
first went wrong, and the signals that have since recovered."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from correlators.no_data import STOPPED_AT, stopped_at
from detectors.records import Finding, FindingKind

FIRST_WRONG = "first_wrong_at"  # evidence of a signal's new episode: when its first one began


def merge_findings(earlier: list[Finding], latest: list[Finding], moves: Sequence[float] = (),
                   slack: float = 300.0) -> list[Finding]:  # CorrelationSettings.onset_slack
    """An incident's findings over its life: the latest value of each signal, and the
    last value of signals that have since recovered (they are part of the story).
    `moves`: when the model's alias moved (deploys, fix forwards, rollbacks)."""
    def key(f: Finding) -> tuple[FindingKind, str, str]:
        return f.kind, f.entity, f.statistic

    merged = {key(f): f for f in earlier}
    for f in latest:
        old = merged.get(key(f))
        if old is None:
            merged[key(f)] = f
            continue
        if _came_back_after_a_move(old, f, moves, slack):
            # A new episode is judged on its own (its onset, whether it held); when the signal first
            # went wrong stays known (FIRST_WRONG), so the KPI baseline stays before it.
            merged[key(f)] = replace(f, evidence={**f.evidence, FIRST_WRONG: first_wrong(old)})
            continue
        if FIRST_WRONG in old.evidence:
            f = replace(f, evidence={**f.evidence, FIRST_WRONG: old.evidence[FIRST_WRONG]})
        if (gone := stopped_at(old)) is not None and stopped_at(f) is None:
            # A series that stopped, read later as matching nothing (its last point left the query's
            # range): still the series that stopped then, which a deploy before it may explain.
            f = replace(f, evidence={**f.evidence, STOPPED_AT: gone})
        if old.onset < f.onset:
            # The same signal, still wrong: it started when it first went wrong, not when
            # the latest window happened to begin.
            f = replace(f, onset=old.onset)
        if _held_s(old) > 0 and _held_s(f) == 0:
            # A KPI drop that held (a regression, KpiDetector.held) is still the regression that
            # made the incident critical when one later stretch wavers back inside the bars.
            f = replace(f, evidence={**f.evidence, "held_s": old.evidence["held_s"]})
        merged[key(f)] = f
    return list(merged.values())


def first_wrong(f: Finding) -> float:
    """When the finding's signal first went wrong in the incident: its onset, or that of an
    earlier episode it came back after."""
    at = f.evidence.get(FIRST_WRONG)
    return min(f.onset, float(at)) if isinstance(at, int | float) else f.onset


def _came_back_after_a_move(old: Finding, f: Finding, moves: Sequence[float], slack: float) -> bool:
    """Whether `f` is a new episode of `old`'s signal: it recovered (not seen wrong for more than
    `slack` before `f` began) and the alias moved since `old` began. CTR back after a fix forward
    and down again 15 min after it is the fix forward's drop: dated from v2's, v3 was never
    suspected and the page blamed v2, which no longer served."""
    return f.onset > old.window_end + slack and any(old.onset < at <= f.onset for at in moves)


def _held_s(f: Finding) -> float:
    """Seconds a KPI drop had held (`held_s`), -1 when the finding does not say."""
    held = f.evidence.get("held_s")
    return float(held) if isinstance(held, int | float) else -1.0
