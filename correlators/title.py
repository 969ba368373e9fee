"""An incident's title: the model and its three most telling symptoms, worst kind first."""
from __future__ import annotations

from detectors.records import Finding, FindingKind


def incident_title(model: str, symptoms: list[Finding]) -> str:
    order = [FindingKind.PERFORMANCE_DROP, FindingKind.CANARY_FAIL, FindingKind.KPI_DROP, FindingKind.SLO_BREACH,
             FindingKind.PREDICTION_DRIFT,
             FindingKind.FEATURE_DRIFT, FindingKind.GPU_SATURATION, FindingKind.METRIC_ANOMALY,
             FindingKind.TRACE_ANOMALY, FindingKind.LOG_ANOMALY, FindingKind.DATA_QUALITY, FindingKind.NO_DATA]
    words = {
        FindingKind.PERFORMANCE_DROP: "{e} {v:+.1f}%",
        FindingKind.KPI_DROP: "KPI {e} {v:+.1f}%",
        FindingKind.SLO_BREACH: "SLO {e} breached",
        FindingKind.PREDICTION_DRIFT: "prediction drift",
        FindingKind.FEATURE_DRIFT: "feature drift ({e})",
        FindingKind.GPU_SATURATION: "GPU saturated",
        FindingKind.METRIC_ANOMALY: "anomaly in {e}",
        FindingKind.TRACE_ANOMALY: "trace anomaly in {e}",
        FindingKind.LOG_ANOMALY: "log anomaly in {e}",
        FindingKind.DATA_QUALITY: "data quality ({e})",
        FindingKind.NO_DATA: "no data ({e})",
        FindingKind.CANARY_FAIL: "canary failed on {e}",
    }
    parts: list[str] = []
    for kind in order:
        of_kind = [f for f in symptoms if f.kind == kind]
        if of_kind:
            top = max(of_kind, key=lambda f: f.score)
            parts.append(words[kind].format(e=top.entity, v=top.value))
        if len(parts) == 3:
            break
    return f"{model}: " + ", ".join(parts)
