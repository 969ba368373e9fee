"""The log detector: fit on a normal period's lines (and spans), score a window's lines.

    detector = LogDetector()
    state = detector.fit(LogReference(normal_lines, normal_spans), t0, t1)   # LogState: to_dict()/from_dict()
    findings = detector.score(state, LogWindow(lines, spans, history_start=None), start, end)
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from detectors.base import check_window
from detectors.logs.params import LogParams
from detectors.logs.quiet import quiet_findings
from detectors.logs.sequences import broken_sequence_findings
from detectors.logs.service_level import service_findings
from detectors.logs.shapes import REFERENCE_COLUMNS, line_frame, shapes
from detectors.logs.templates import assign_templates, template_findings, template_table
from detectors.logs.vanished import OPS_COLUMNS, span_ops, vanished_findings
from detectors.logs.views import FRESH, PERSISTENT, Ctx
from detectors.records import Finding, LogRecord, Span
from detectors.tables import table_from_dict, table_to_dict


@dataclass(frozen=True)
class LogReference:
    """A normal period's lines, and its spans when lines carry `labels["span_id"]` (they
    enable the vanished-template check)."""

    records: Sequence[LogRecord]
    spans: Sequence[Span] = ()


@dataclass(frozen=True)
class LogWindow:
    """The current lines (and spans). With `history_start`, lines and spans from then
    until the window start are recent history: a normal window fitted once is short and
    old, and what the system did just before the alert tells recurring background
    errors (present before and after) from what changed at the alert (see views.py)."""

    records: Sequence[LogRecord]
    spans: Sequence[Span] = ()
    history_start: float | None = None


@dataclass
class LogState:
    """The reference's line shapes (one row per line, without the text) and span runs."""

    frame: pd.DataFrame  # shapes.REFERENCE_COLUMNS
    ops: pd.DataFrame | None  # vanished.OPS_COLUMNS; None when the reference had no spans
    start: float
    end: float

    @property
    def duration(self) -> float:
        return max(self.end - self.start, 1.0)

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "lines": table_to_dict(self.frame, REFERENCE_COLUMNS),
                "spans": None if self.ops is None else table_to_dict(self.ops, OPS_COLUMNS)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LogState:
        try:
            start, end, lines, spans = float(d["start"]), float(d["end"]), d["lines"], d["spans"]
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError("log state: expected {'start', 'end', 'lines', 'spans'}") from exc
        ops = None if spans is None else table_from_dict(spans, OPS_COLUMNS, "log state spans")
        return cls(table_from_dict(lines, REFERENCE_COLUMNS, "log state lines"), ops, start, end)


@dataclass(frozen=True)
class LogDetector:
    params: LogParams = field(default_factory=LogParams)

    def fit(self, reference: LogReference, start: float, end: float) -> LogState:
        """The lines (and spans) of a normal period that lasted from `start` to `end`."""
        frame = shapes(line_frame(reference.records))[list(REFERENCE_COLUMNS)].reset_index(drop=True)
        ops = span_ops(reference.spans) if reference.spans else None
        return LogState(frame, ops, start, end)

    def score(self, state: LogState, window: LogWindow, start: float, end: float) -> list[Finding]:
        """Findings (kind LOG_ANOMALY, `service` set) for the window's lines in [start, end]."""
        check_window("LogDetector", start, end)
        current = _current(window, start, end)
        if current is None:
            return []
        allc, lo = current
        dur = (state.duration, start - lo, end - start)
        ctx = Ctx(start, end, dur, (FRESH, PERSISTENT) if lo < start else (FRESH,), self.params)
        grp_c = np.where(allc["ts"].to_numpy() >= start, 2, 1)
        both = pd.concat([state.frame.assign(_grp=0), allc.assign(_grp=grp_c)], ignore_index=True)
        tid, names = assign_templates(both, self.params)
        g = both.assign(tid=tid)
        findings = service_findings(g, ctx)
        ops = _ops(state, window, lo, start, end)
        if ops is not None:
            findings += vanished_findings(g, names, ops, ctx)
        elif self.params.quiet:  # no span runs to count by (see _ops)
            findings += quiet_findings(g, names, ctx)
        findings += broken_sequence_findings(g, names, ctx)
        findings += template_findings(template_table(g, names), ctx)
        return findings


def _current(window: LogWindow, start: float, end: float) -> tuple[pd.DataFrame, float] | None:
    """The window's lines from the start of recent history (or the window) to `end`,
    shaped, and that start; None when no line falls in the window itself."""
    allc = line_frame(window.records)
    recent_start = None
    if window.history_start is not None and len(allc):
        # History starts where the data do, if later than asked (a store keeps what it keeps).
        recent_start = max(window.history_start, float(allc["ts"].min()))
        if recent_start >= start:
            recent_start = None
    lo = start if recent_start is None else recent_start
    allc = allc[(allc["ts"] >= lo) & (allc["ts"] <= end)]
    if not (allc["ts"] >= start).any():
        return None
    return shapes(allc), lo


def _ops(state: LogState, window: LogWindow, lo: float, start: float, end: float) -> pd.DataFrame | None:
    """Span runs of the reference (group 0), recent history (1) and window (2); None when
    there are no runs to count by: no spans in the window, or none in the reference and
    none in the recent history (a normal period without traces and no history)."""
    if not window.spans:
        return None
    ops_all = span_ops(window.spans)
    ops_all = ops_all[(ops_all["start"] >= lo) & (ops_all["start"] <= end)]
    grp = np.where(ops_all["start"].to_numpy() >= start, 2, 1)
    if state.ops is None and not (grp == 1).any():
        return None
    # A normal period without spans: its lines cannot be counted per run, the history's can.
    ref = state.ops if state.ops is not None else ops_all.iloc[:0]
    return pd.concat([ref.assign(_grp=0), ops_all.assign(_grp=grp)], ignore_index=True)
