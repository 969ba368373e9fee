"""The performance stage of a cycle: realised performance from delayed labels, estimated
(CBPE) before they land, per version and window over the model's horizon, judged against
the reference period.

Runs after detect; its findings join the cycle's, so a drop opens (or joins) the model's
incident in the same cycle the labels showing it are read. Each cycle re-reads the
labels, so a drop alerts within one cycle of the labels' arrival. The report (every
window, realised beside estimated, coverage and delay) is kept for the API and exported
to /metrics.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from detectors.performance import JudgeParams, WindowPerformance, WindowSpec, estimate, evaluate_windows, judge
from detectors.performance.judge import labels_overdue
from detectors.performance.windows import Memo, join_labels, labels_matching_nothing
from detectors.records import Finding
from monitor.config import ModelConfig
from monitor.config_performance import PerformanceConfig
from monitor.cycle.performance_inputs import PerformanceInputs, Reference
from monitor.metrics import VigilMetrics
from monitor.sources.samples import SampleFileError
from monitor.store.repository import Store
from monitor.types import Window, no_data

log = logging.getLogger("vigil.performance")
ENTITY = "performance"


@dataclass
class PerformanceOutcome:
    findings: list[Finding] = field(default_factory=list)
    blind: list[str] = field(default_factory=list)
    report: dict[str, Any] | None = None
    windows: list[WindowPerformance] = field(default_factory=list)


def _spec(perf: PerformanceConfig, ref: Reference) -> WindowSpec:
    state = ref.cbpe
    estimator = None if state is None else (lambda pred, score: estimate(state, pred, score))
    return WindowSpec(perf.task, perf.window, perf.min_labels, perf.positive_class, estimator,
                      min_class_labels=perf.min_class_labels)


def build_report(m: ModelConfig, perf: PerformanceConfig, t: float, ref: Reference,
                 windows: list[WindowPerformance]) -> dict[str, Any]:
    note = "; ".join(filter(None, [ref.note, "" if windows else "no predictions with an id in the horizon"]))
    return {"model": m.name, "at": t, "task": perf.task, "reference": ref.metrics, "reference_labels": ref.labels,
            "reference_source": ref.source, "drop_pct": perf.drop_pct, "min_labels": perf.min_labels,
            "windows": [w.to_dict() for w in windows], "note": note}


def blind_report(m: ModelConfig, perf: PerformanceConfig, t: float, why: str) -> dict[str, Any]:
    """The report of a cycle that could not read its inputs: no figure, and why."""
    return {"model": m.name, "at": t, "task": perf.task, "reference": {}, "reference_labels": 0,
            "reference_source": "", "drop_pct": perf.drop_pct, "min_labels": perf.min_labels, "windows": [],
            "note": f"no figures this cycle: {why}"}


class PerformanceStage:
    def __init__(self, inputs: PerformanceInputs, store: Store, metrics: VigilMetrics) -> None:
        self._inputs, self._store, self._metrics = inputs, store, metrics
        self._memo: dict[str, tuple[Reference, Memo]] = {}  # per model, valid for one fitted reference
        self._saved: dict[str, int] = {}  # per model: the digest of the report last stored

    def run(self, m: ModelConfig, t: float, serving: str | None, w: Window) -> PerformanceOutcome:
        """Never raises: what could not be read is a NO_DATA finding and a blind line."""
        perf = m.performance
        if perf is None:  # (a reload may have removed it: its last figures must not stand in /metrics)
            self._metrics.set_performance(m.name, {}, None, None)
            return PerformanceOutcome()
        try:
            out = self._run(m, perf, t, serving, w)
        except Exception as e:
            why = str(e)
            if not isinstance(e, SampleFileError | OSError | ValueError):  # a bug costs the figures, never the cycle
                log.exception("performance stage failed", extra={"model": m.name})
                why = f"internal error: {type(e).__name__}: {e}"
            self._metrics.set_performance(m.name, {}, None, None)  # unknown now: no figure stands in /metrics
            # ... nor in the API: the last good report, served on, read as this cycle's figures
            self._save(m.name, t, blind_report(m, perf, t, why))
            return PerformanceOutcome([no_data(m.name, ENTITY, why, w)], [f"performance: {why}"])
        stopped = labels_overdue(out.windows, t, perf.min_labels, t - perf.horizon)
        if any(f.entity == "labels" for f in out.findings):  # labels matching no prediction: said already
            stopped = None
        if stopped is not None:  # a finding of its own: the figures shown are stale, never an all clear
            out.findings.append(no_data(m.name, "labels", stopped, w))
            if out.report is not None:
                out.report["note"] = "; ".join(filter(None, [out.report["note"], stopped]))
        self._save(m.name, t, out.report or {})
        export(self._metrics, m.name, out)
        return out

    def _save(self, model: str, t: float, report: dict[str, Any]) -> None:
        """Store the report when its figures changed: most cycles they do not, and a write per
        model per cycle is what the store would spend most of its time on. Never raises: a
        store refusing this write cost the cycle, and the drop it had just found went unsaid;
        the report not kept is written by the next cycle that can."""
        digest = hash(json.dumps({k: v for k, v in report.items() if k != "at"}, sort_keys=True, default=str))
        if self._saved.get(model) == digest:
            return
        try:
            self._store.labels.save_report(model, t, report)
        except Exception:  # the store itself may be what failed: the cycle goes on
            log.exception("performance report not stored", extra={"model": model})
            return
        self._saved[model] = digest

    def _run(self, m: ModelConfig, perf: PerformanceConfig, t: float, serving: str | None, w: Window
             ) -> PerformanceOutcome:
        ref = self._inputs.reference(m, perf, t, serving)
        start = t - perf.horizon
        notes: list[str] = []  # predictions that could not be used, counted
        preds = self._inputs.predictions(m, perf, start, t, serving, notes)
        labels = self._inputs.labels(m, perf, start, t, notes)
        held = self._memo.get(m.name)
        memo: Memo = held[1] if held is not None and held[0] is ref else {}
        self._memo[m.name] = (ref, memo)
        joined = join_labels(preds, labels)
        windows = evaluate_windows(joined, start, t, _spec(perf, ref), memo)
        findings = judge(windows, ref.metrics, JudgeParams(m.name, perf.drop_pct, judge_estimates=perf.estimate))
        for f in findings if perf.version_value else []:  # how a label names a registry version, for the deploy blamed
            f.evidence["version_value"] = perf.version_value
        stray = labels_matching_nothing(preds, labels, joined, perf.min_labels)
        if stray is not None:  # never the silence of labels still on their way
            findings.append(no_data(m.name, "labels", stray, w))
        report = build_report(m, perf, t, ref, windows)
        if notes:  # said in the report, not a blind line: the rest was judged (a blind cycle never resolves)
            log.warning("predictions left out", extra={"model": m.name, "detail": "; ".join(notes)})
            report["note"] = "; ".join(filter(None, [report["note"], *notes]))
        if stray is not None:
            report["note"] = "; ".join(filter(None, [report["note"], stray]))
        return PerformanceOutcome(findings, [], report, windows)


def export(metrics: VigilMetrics, model: str, out: PerformanceOutcome) -> None:
    """The version serving now's newest judged window (realised) and newest window (estimated);
    without a window, the reference alone (the rest is unknown, not last cycle's figure). The
    version serving now is the busiest of the newest window: the busiest of the horizon kept
    the dashboard on a replaced version's figures for days after a deploy."""
    if out.report is None:
        metrics.set_performance(model, {}, None, None)
        return
    if not out.windows:
        metrics.set_performance(model, {"reference": dict(out.report["reference"])}, None, None)
        return
    newest = max(w.start for w in out.windows)
    main = max((w for w in out.windows if w.start == newest), key=lambda w: w.predictions).version
    mine = [w for w in out.windows if w.version == main]
    realised = [w for w in mine if w.realised is not None]
    estimated = [w for w in mine if w.estimated is not None]
    figures: dict[str, dict[str, float | None]] = {"reference": dict(out.report["reference"])}
    shown = realised[-1] if realised else mine[-1]
    figures["realised"] = dict(realised[-1].realised or {}) if realised else dict.fromkeys(figures["reference"])
    if estimated:
        figures["estimated"] = dict(estimated[-1].estimated or {})
    delay = shown.delay_median_s
    metrics.set_performance(model, figures, shown.coverage, None if delay is None or np.isnan(delay) else delay)
