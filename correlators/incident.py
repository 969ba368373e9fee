"""Incidents and their ranked causes: what correlators hand to the alert policy."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from detectors.records import DeployEvent, Finding, FindingKind, json_safe


class CauseKind(StrEnum):
    DEPLOY = "deploy"  # a new model version took the alias shortly before onset
    GPU_SATURATION = "gpu_saturation"
    UPSTREAM_DRIFT = "upstream_drift"  # input data changed with no deploy to explain it
    SERVICE = "service"  # a service ranked by the multimodal root-cause analysis
    CANARY = "canary"  # a challenger version that failed against the champion
    # signals that read no data with no deploy to explain it (a query matching nothing, a source down)
    NO_DATA = "no_data"
    UNKNOWN = "unknown"


@dataclass
class Cause:
    kind: CauseKind
    entity: str  # "recommender v2", "gpu-node-1/gpu 0", "feature user_age", a service name
    score: float  # confidence in [0, 1]; causes are ranked by it
    explanation: str  # one paragraph a person can act on
    evidence: dict[str, Any] = field(default_factory=dict)
    deploy: DeployEvent | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["kind"] = str(self.kind)
        return json_safe(d)


@dataclass
class Incident:
    """Findings of one model in one window, merged, with causes ranked best first."""

    model: str
    window_start: float
    window_end: float
    onset: float
    findings: list[Finding]
    causes: list[Cause]
    title: str = ""

    @property
    def top_cause(self) -> Cause | None:
        return self.causes[0] if self.causes else None

    def kinds(self) -> set[FindingKind]:
        return {f.kind for f in self.findings}

    def to_dict(self) -> dict[str, Any]:
        return json_safe(
            {
                "model": self.model,
                "window_start": self.window_start,
                "window_end": self.window_end,
                "onset": self.onset,
                "title": self.title,
                "findings": [f.to_dict() for f in self.findings],
                "causes": [c.to_dict() for c in self.causes],
            }
        )
