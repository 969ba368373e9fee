"""Log and trace findings for a model's services, scored against baselines the store keeps.

A baseline is fitted on the window before the current one and stored (in the model's
detector state) with the period it was fitted on. It is refitted only while nothing is
wrong: once an incident is open the baseline stays the pre-onset one, so a lasting
failure does not become the new normal, the way KPI baselines freeze. A restart resumes
from the stored baseline instead of refitting on whatever the last window held.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from correlators.coverage import observed_modalities, reference_lacking
from detectors.logs import LogDetector, LogReference, LogState, LogWindow
from detectors.records import Finding
from detectors.traces import ServiceGraph, TraceDetector, TraceState, TraceWindow
from monitor.types import RawSignals, ServiceEvidence, Window

LOGS_KEY = "@logs"  # detector-state keys: series keys are "name|labels", never starting with @
TRACES_KEY = "@traces"


@dataclass(frozen=True)
class LogTraceResult:
    findings: list[Finding]
    evidence: ServiceEvidence | None
    state: dict[str, Any]  # the baselines to store, by key


def stored_baseline(state: dict[str, Any], key: str, kind: type[LogState] | type[TraceState]) -> Any:
    """A stored, still readable baseline, or None (an unreadable one is refitted)."""
    entry = state.get(key)
    try:
        return kind.from_dict(entry["state"]) if isinstance(entry, dict) else None
    except (KeyError, TypeError, ValueError):
        return None


def refit_needed(stored: dict[str, Any], incident_open: bool, *, logs: bool, traces: bool) -> bool:
    """Fit on the previous window when nothing is wrong, or when a configured source
    (`logs`: Loki, `traces`: Tempo) has no usable baseline yet."""
    if not incident_open:
        return True  # no need to read the stored ones: they are replaced
    return ((logs and stored_baseline(stored, LOGS_KEY, LogState) is None)
            or (traces and stored_baseline(stored, TRACES_KEY, TraceState) is None))


# A stored baseline older than this (its period's end before the window) no longer stands
# in for a failed refresh: the source is blind instead, as with none stored.
STALE_LIMIT_S = 86_400.0


_STORED = {"loki": (LOGS_KEY, LogState), "tempo": (TRACES_KEY, TraceState)}


def can_fall_back(stored: dict[str, Any], window_start: float, source: str) -> bool:
    """Whether `source`'s ("loki", "tempo") stored baseline can stand in when its refresh
    read fails (monitor/cycle/logs_traces.py): readable, not empty, under a day old. Asked
    only on a failure, so a healthy cycle never decodes the stored baselines for it."""
    key, kind = _STORED[source]
    state = stored_baseline(stored, key, kind)
    if state is None or not len(state.frame):
        return False
    return window_start - _fitted_end(stored[key], state) <= STALE_LIMIT_S


def _fitted_end(entry: dict[str, Any], state: LogState | TraceState) -> float:
    try:
        return float(entry["fitted_on"][1])
    except (KeyError, TypeError, IndexError, ValueError):
        return float(state.end)


def detect_logs_traces(raw: RawSignals, model: str, w: Window, stored: dict[str, Any]) -> LogTraceResult:
    """Score the window's spans and lines; `stored` is the model's detector state."""
    if not (raw.logs_current or raw.spans_current):
        return LogTraceResult([], None, {})
    new: dict[str, Any] = {}
    held = raw.baseline_unread  # gather's word on which stored baselines stand in, and why
    graph, trace_findings, log_findings, lacking = ServiceGraph(), [], [], []
    if raw.spans_current:
        traces = TraceDetector()
        t_state = _baseline(stored, new, TRACES_KEY, TraceState, None if "traces" in held else raw.baseline_window,
                            lambda a, b: traces.fit(raw.spans_baseline, a, b),
                            [sp.start_ns / 1e9 for sp in raw.spans_baseline])
        if t_state is not None:
            report = traces.assess(t_state, TraceWindow(raw.spans_current), w.start, w.t)
            graph, trace_findings = report.graph, report.findings
            lacking += _lacking("traces", TRACES_KEY, t_state, len(raw.spans_current), held, new, stored, w)
            lacking += [raw.traces_sampled] if raw.traces_sampled else []
    if raw.logs_current:
        logs = LogDetector()
        l_state = _baseline(stored, new, LOGS_KEY, LogState, None if "logs" in held else raw.baseline_window,
                            lambda a, b: logs.fit(LogReference(raw.logs_baseline, raw.spans_baseline), a, b),
                            [r.ts for r in raw.logs_baseline])
        end, cut = logs_read_until(raw.logs_current, w)
        lacking += cut
        if l_state is not None and end > w.start:
            log_findings = logs.score(l_state, LogWindow(raw.logs_current, raw.spans_current), w.start, end)
            lacking += _lacking("logs", LOGS_KEY, l_state, len(raw.logs_current), held, new, stored, w)
    findings = log_findings + trace_findings
    for f in findings:
        f.model = model
    # The graph and the coverage even without a finding here: they are what the service
    # ranking needs to place the root-cause metrics' findings (a callee explains its caller).
    evidence = ServiceEvidence(log_findings, trace_findings, graph,
                               observed_modalities((), raw.logs_current, raw.spans_current), lacking=tuple(lacking))
    return LogTraceResult(findings, evidence, new)


def logs_read_until(lines: Any, w: Window) -> tuple[float, list[str]]:
    """Where the window's lines are whole, and what the diagnosis lacked past it. Loki's read
    stops at `sources.loki.max_lines` (monitor/sources/loki.py, `LogLines.until`): scored to
    the window's end, every line of the cut service would have "stopped while its operation
    still runs" and the busiest service would be named the cause."""
    until = getattr(lines, "until", None)
    if until is None or until >= w.t:
        return w.t, []
    read = max(0.0, until - w.start)
    return until, [f"logs read only up to {read:.0f} s into the {w.t - w.start:.0f} s window (Loki's read was "
                   "cut short, sources.loki.max_lines); the rest not judged"]


def _lacking(modality: str, key: str, state: LogState | TraceState, records: int, held: dict[str, str],
             new: dict[str, Any], stored: dict[str, Any], w: Window) -> list[str]:
    """What the baseline scored against lacked, said on every cause.

    No records (a service's first hour, Loki or Tempo answering nothing then), or records
    over a short stretch of its period (a retention gap): every line or call is then new
    to it, and its findings deserve less confidence. The stretch is the one its records
    cover, as the benchmarks measure it; a baseline stored without it counts its period.
    And a stale one: the stored baseline stood in for a refit (`held`: why)."""
    entry = new.get(key) or stored.get(key)
    covered = entry.get("covered") if isinstance(entry, dict) else None
    seconds = float(covered) if isinstance(covered, (int, float)) else state.end - state.start
    out = reference_lacking(modality, len(state.frame), seconds, records, w.t - w.start)
    if modality in held and isinstance(entry, dict):
        age = max(0.0, w.start - _fitted_end(entry, state))
        out.append(f"stale {modality} baseline: {held[modality]}, the stored one ends {age / 60:.0f} min "
                   "before the window")
    return out


def _baseline(stored: dict[str, Any], new: dict[str, Any], key: str, kind: Any,
              window: tuple[float, float] | None, fit: Any, times: list[float]) -> Any:
    """The baseline to score against: refitted when gather read a baseline window
    (it does so only when a refit is due), else the stored one. `times`: its records'."""
    if window is not None:
        state = fit(*window)
        covered = max(times) - min(times) if times else 0.0
        new[key] = {"fitted_on": list(window), "state": state.to_dict(), "covered": covered}
        return state
    return stored_baseline(stored, key, kind)
