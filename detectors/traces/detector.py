"""The trace detector: fit on the spans of a normal period, score the spans of a window.

    detector = TraceDetector()
    state = detector.fit(normal_spans, t0, t1)          # TraceState: to_dict()/from_dict()
    findings = detector.score(state, TraceWindow(spans), start, end)
    report = detector.assess(state, TraceWindow(spans), start, end)   # findings + the service graph
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from detectors.base import check_window
from detectors.records import Finding, Span
from detectors.tables import table_from_dict, table_to_dict
from detectors.traces.checks import detect_all
from detectors.traces.graph import ServiceGraph, build_graph
from detectors.traces.params import TraceParams
from detectors.traces.spans import OPTIONAL_COLUMNS, REFERENCE_COLUMNS, prepare, span_frame


@dataclass
class TraceState:
    """The reference's spans, one row each, as the checks read them (spans.REFERENCE_COLUMNS)."""

    frame: pd.DataFrame
    start: float
    end: float

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "spans": table_to_dict(self.frame, REFERENCE_COLUMNS)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TraceState:
        try:
            start, end, spans = float(d["start"]), float(d["end"]), d["spans"]
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError("trace state: expected {'start', 'end', 'spans'}") from exc
        # A state stored before the optional columns were kept is read with them NaN (no
        # clustering known): refitting it would learn from an incident's own window.
        cols = spans.get("columns") if isinstance(spans, Mapping) else None
        rows = spans.get("rows") if isinstance(spans, Mapping) else None
        absent = [c for c in OPTIONAL_COLUMNS if isinstance(cols, Mapping) and c not in cols]
        if absent and isinstance(cols, Mapping) and isinstance(rows, int):
            spans = {**spans, "columns": {**cols, **{c: [None] * rows for c in absent}}}
        return cls(table_from_dict(spans, REFERENCE_COLUMNS, "trace state"), start, end)


@dataclass(frozen=True)
class TraceWindow:
    """The current spans. With `history_start`, spans starting from then until the window
    start are recent history (see TraceDetector.assess)."""

    spans: Sequence[Span]
    history_start: float | None = None


@dataclass
class TraceReport:
    findings: list[Finding]
    graph: ServiceGraph  # edges of the reference (and recent history) and of the window


@dataclass(frozen=True)
class TraceDetector:
    params: TraceParams = field(default_factory=TraceParams)

    def fit(self, reference: Sequence[Span], start: float, end: float) -> TraceState:
        """The spans of a normal period [start, end] (all of them are kept: the period's
        bounds are the caller's to choose)."""
        frame = prepare(span_frame(reference))
        return TraceState(frame[list(REFERENCE_COLUMNS)].reset_index(drop=True), start, end)

    def score(self, state: TraceState, window: TraceWindow, start: float, end: float) -> list[Finding]:
        return self.assess(state, window, start, end).findings

    def assess(self, state: TraceState, window: TraceWindow, start: float, end: float) -> TraceReport:
        """TRACE_ANOMALY findings (service set) for spans starting in [start, end], and the graph.

        With `window.history_start`, the window is tested against normal + history (a
        drift already there before the alert, such as a slow table or a busy dependency,
        is not news), and history + window against normal at `persistent_weight`; per
        finding the stronger reading is kept.
        """
        check_window("TraceDetector", start, end)
        b = state.frame
        if not window.spans:
            return TraceReport([], build_graph(b, b.iloc[:0]))
        c = prepare(span_frame(window.spans))
        start_s = c["start_ns"].to_numpy() / 1e9
        recent = c.iloc[:0]
        if window.history_start is not None:
            recent = c[(start_s >= window.history_start) & (start_s < start)]
        c = c[(start_s >= start) & (start_s <= end)]
        fresh_b = _stacked(b, recent) if len(recent) else b
        findings = detect_all(fresh_b, c, start, end, self.params)
        if len(recent):
            findings = self._with_history(findings, b, recent, c, end)
        return TraceReport(findings, build_graph(fresh_b, c))

    def _with_history(self, findings: list[Finding], b: pd.DataFrame, recent: pd.DataFrame, c: pd.DataFrame,
                      end: float) -> list[Finding]:
        """Read a second way: history + window against normal only, at `persistent_weight`.
        What already differed from normal before the alert is less likely to be its cause
        than what changed at it, but still counts when nothing else changed."""
        findings = [replace(f, evidence={**f.evidence, "view": "fresh"}) for f in findings]
        hist_start = float(recent["start_ns"].min() / 1e9)
        best = {(f.statistic, f.entity): f for f in findings}
        # Without normal calls the window's own stand in only for the fresh reading, which
        # the history already gives a reference; this one would judge history by itself.
        for f in detect_all(b, pd.concat([recent, c], ignore_index=True), hist_start, end, self.params,
                            peers=False):
            f = replace(f, score=f.score * self.params.persistent_weight,
                        evidence={**f.evidence, "view": "persistent"})
            key = (f.statistic, f.entity)
            if key not in best or f.score > best[key].score:
                best[key] = f
        return list(best.values())


def _stacked(b: pd.DataFrame, more: pd.DataFrame) -> pd.DataFrame:
    """`b` and `more` as one reference, `more`'s run and trace numbers moved past `b`'s:
    each frame numbers its own from 0, and two runs given one number would read as one
    burst of calls (checks._dispersion)."""
    shift = {c: float(np.nanmax(b[c].to_numpy(float), initial=-1.0)) + 1.0 for c in OPTIONAL_COLUMNS}
    return pd.concat([b, more.assign(**{c: more[c] + k for c, k in shift.items()})], ignore_index=True)
