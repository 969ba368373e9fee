"""Signal records and findings: the shared vocabulary at the bottom of the stack.

Every layer above (correlators, alerts, monitor) speaks in these types. Times are
unix epoch seconds as floats throughout the pure core: they are cheap to vectorise
and unambiguous about time zones; datetimes appear only at the edges (API, Slack).
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np

from detectors.numbers import NONFINITE, nonfinite_text

# How a finding read from a partial answer (`Series.partial`) is said, before the backend's why.
PARTIAL_WORDS = "read from a partial answer"


class Direction(StrEnum):
    """Which way a signal moved, or which way is bad for it."""

    UP = "up"
    DOWN = "down"
    BOTH = "both"


class FindingKind(StrEnum):
    FEATURE_DRIFT = "feature_drift"
    PREDICTION_DRIFT = "prediction_drift"
    DATA_QUALITY = "data_quality"
    KPI_DROP = "kpi_drop"
    SLO_BREACH = "slo_breach"
    METRIC_ANOMALY = "metric_anomaly"
    GPU_SATURATION = "gpu_saturation"
    LOG_ANOMALY = "log_anomaly"
    TRACE_ANOMALY = "trace_anomaly"
    PERFORMANCE_DROP = "performance_drop"  # realised (labels) or estimated (CBPE) performance fell
    NO_DATA = "no_data"
    CANARY_FAIL = "canary_fail"  # a challenger failed a metric against the champion (detectors/canary.py)


@dataclass(frozen=True)
class Series:
    """One time series: a PromQL result row or a KPI, as aligned numpy columns.

    `values` may hold NaN for a missing point; an empty series means "no data",
    which is never the same as a run of zeros.
    """

    name: str
    labels: dict[str, str]
    timestamps: np.ndarray  # float64 epoch seconds, ascending
    values: np.ndarray  # float64
    # Why the answer it was read from may be missing data ("" when whole): a store or
    # storage node that did not answer (Thanos/Mimir `warnings`, VictoriaMetrics `isPartial`).
    partial: str = ""

    def __post_init__(self) -> None:
        if len(self.timestamps) != len(self.values):
            raise ValueError(
                f"Series {self.name!r}: timestamps ({len(self.timestamps)}) and values "
                f"({len(self.values)}) must have the same length"
            )

    @property
    def empty(self) -> bool:
        return len(self.values) == 0 or bool(np.all(np.isnan(self.values)))

    def between(self, start: float, end: float) -> Series:
        """Points with start <= t <= end."""
        mask = (self.timestamps >= start) & (self.timestamps <= end)
        return Series(self.name, self.labels, self.timestamps[mask], self.values[mask], self.partial)

    def label_str(self) -> str:
        inner = ",".join(f'{k}="{v}"' for k, v in sorted(self.labels.items()) if k != "__name__")
        return f"{self.name}{{{inner}}}" if inner else self.name


class Answer(list[Series]):
    """A query's series, and why the answer they came in may be missing data (`partial`,
    as `Series.partial`). An answer with no series can say so too: the only store holding
    a signal was down, and [] alone would read as "matched nothing", for an optional
    signal as nothing wrong."""

    partial: str = ""  # set on an answer only when partial: list's own constructor stays the cost

    @classmethod
    def of(cls, series: Iterable[Series] = (), partial: str = "") -> Answer:
        out = cls(series)
        if partial:
            out.partial = partial
        return out


def partial_of(found: Sequence[Series]) -> str:
    """Why `found` (an `Answer`, or a plain list of Series) may be missing data, else ""."""
    if isinstance(found, Answer):  # what a source returns: its mark is its series' too
        return found.partial
    return next((s.partial for s in found if s.partial), "")


@dataclass(frozen=True)
class LogRecord:
    ts: float  # epoch seconds
    service: str
    line: str
    pod: str | None = None
    level: str | None = None
    trace_id: str | None = None  # hex
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Span:
    trace_id: str  # hex
    span_id: str  # hex
    parent_id: str | None  # hex, None for a root span
    service: str
    operation: str
    start_ns: int
    end_ns: int
    error: bool = False
    pod: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def duration_ns(self) -> int:
        return self.end_ns - self.start_ns


@dataclass(frozen=True)
class DeployEvent:
    """A model version became the one serving under an alias (or was registered)."""

    model: str
    alias: str
    version: str
    previous_version: str | None  # the version that held the alias before: the rollback target
    at: float  # epoch seconds
    # "registry" (an alias move the poll saw), "response" (one it knows was made while an
    # incident was open), "observed" (first sight), "rollback", "promotion", "bundle"
    source: str = "registry"


@dataclass
class Finding:
    """One thing a detector saw, with the numbers that made it say so.

    `value` is the observed statistic and `threshold` what it was compared with, so
    a message can always say "0.31 > 0.20" (the Flagger lesson: the number next to
    the threshold). `score` is a unitless strength in [0, 1] used for ranking.
    """

    kind: FindingKind
    entity: str  # feature, KPI, SLO, GPU, service ... what the finding is about
    value: float
    threshold: float
    window_start: float
    window_end: float
    onset: float
    score: float = 0.0
    model: str | None = None
    service: str | None = None
    direction: Direction | None = None
    baseline: float | None = None
    statistic: str = ""  # e.g. "psi", "ks", "p99_latency_s", "kpi_change_pct"
    message: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe. A value, threshold or baseline that is not finite is written as Prometheus
        writes it ("+Inf", "-Inf", "NaN"), where other numbers that are not become null."""
        d = asdict(self)
        d["kind"] = str(self.kind)
        d["direction"] = str(self.direction) if self.direction else None
        out: dict[str, Any] = _json_safe(d)
        for k in _NUMBERS:
            if out[k] is None and d[k] is not None:
                out[k] = nonfinite_text(float(d[k]))
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Finding:
        d = dict(d)
        d.update({k: float(d[k]) for k in _NUMBERS if d.get(k) in NONFINITE})  # "+Inf" -> inf
        d["kind"] = FindingKind(d["kind"])
        d["direction"] = Direction(d["direction"]) if d.get("direction") else None
        return cls(**d)


_NUMBERS = ("value", "threshold", "baseline")  # a Finding's numbers


def _json_safe(obj: Any) -> Any:
    """NaN/inf become None and numpy scalars plain Python, so records survive JSON."""
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


json_safe = _json_safe


def partial_read(finding: Mapping[str, Any]) -> str:
    """Why a finding (as stored and sent: a dict) was read from a partial answer, else ""."""
    evidence = finding.get("evidence")
    return str(evidence.get("partial") or "") if isinstance(evidence, Mapping) else ""
