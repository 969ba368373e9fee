"""Log and trace findings for a model's services, through the same multimodal path the
Nezha benchmark measures; a missing modality lowers confidence but never stops a cycle."""
from __future__ import annotations

from correlators.incident import Cause
from correlators.rca import diagnose
from detectors.records import Finding
from monitor.config import ModelConfig
from monitor.types import RawSignals, Window

MAX_SERVICE_CAUSES = 5  # the full ranking is in the RCA; an incident shows the top of it


def detect_logs_traces(raw: RawSignals, m: ModelConfig, w: Window) -> tuple[list[Finding], list[Cause]]:
    if not (raw.logs_current or raw.spans_current) or raw.baseline_window is None:
        return [], []
    d = diagnose(alert_time=w.t, window_start=w.start, window_end=w.t, logs_baseline=raw.logs_baseline,
                 logs_current=raw.logs_current, spans_baseline=raw.spans_baseline, spans_current=raw.spans_current,
                 baseline_window=raw.baseline_window, candidates=m.services)
    findings = d.log_findings + d.trace_findings
    for f in findings:
        f.model = m.name
    return findings, d.causes[:MAX_SERVICE_CAUSES] if findings else []
