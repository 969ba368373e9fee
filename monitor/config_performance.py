"""`models[].performance`: model performance from delayed labels, and estimated before them.

    performance:
      task: classification            # or regression
      id_column: prediction_id        # in the samples: joins a prediction to its label
      probability_column: score       # classification: P(class 1); ROC AUC and the CBPE estimate need it
      labels: {path: labels/}         # label files (also POST /v1/labels)
      reference: {start: 2026-11-01T00:00:00Z, end: 2026-11-08T00:00:00Z}   # or {path: reference.parquet}
      drop_pct: 10                    # alert when a metric is this much worse than in the reference
      min_labels: 100                 # fewer labels in a window: "too few labels", no figure
      min_class_labels: 30            # precision/recall/F1/ROC AUC: this many of the rows each reads
"""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from monitor.config_types import Duration


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LabelFilesConfig(_Model):
    path: str  # directory or glob of parquet/CSV label files, relative to the config file
    id_column: str = "prediction_id"
    label_column: str = "label"
    timestamp_column: str = "timestamp"  # when the label became known


class PerformanceReferenceConfig(_Model):
    """The period performance is compared with: a labelled file, or a span of logged
    predictions whose labels Vigil holds."""

    path: str | None = None  # parquet/CSV with the prediction, probability and label columns
    label_column: str = "label"  # the label's column in that file
    start: datetime | None = None
    end: datetime | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> PerformanceReferenceConfig:
        period = self.start is not None or self.end is not None
        if self.path is None and not period:
            raise ValueError("expected `path` (a labelled reference file) or `start` and `end` (a period)")
        if self.path is not None and period:
            raise ValueError("expected either `path` or `start`/`end`, not both")
        if period and (self.start is None or self.end is None or self.end <= self.start):
            raise ValueError("expected both `start` and `end`, with `end` after `start`")
        return self

    def period(self) -> tuple[float, float] | None:
        """The reference period in epoch seconds (a time without a zone is UTC); None for a file."""
        if self.start is None or self.end is None:
            return None
        start, end = ((d if d.tzinfo else d.replace(tzinfo=UTC)).timestamp() for d in (self.start, self.end))
        return start, end


class PerformanceConfig(_Model):
    task: Literal["classification", "regression"]
    id_column: str = "prediction_id"
    prediction_column: str | None = None  # default: models[].prediction_column
    probability_column: str | None = None  # classification only: the probability of the positive class
    positive_class: float = 1.0  # labels and predictions equal to this are the positive class
    version_column: str = "model_version"  # in the samples; without it, the version the alias served then
    # How that column writes a registry version, e.g. "resnet50-v{version}": a label then names
    # version N only when it is this rendered for N. Unset: a label naming it as its one number.
    version_value: str | None = None
    labels: LabelFilesConfig | None = None  # label files; labels posted to /v1/labels are always read
    reference: PerformanceReferenceConfig
    drop_pct: float = Field(10.0, gt=0, le=100)
    min_labels: int = Field(100, ge=1)
    # Precision, recall, F1 and ROC AUC also need this many of the rows they are read off
    # (predicted positives, positive labels, each class): recall read off one positive is noise.
    min_class_labels: int = Field(30, ge=1)
    window: Duration = 3600.0  # figures per aligned window of this length
    horizon: Duration = 7 * 86400.0  # windows this far back are re-evaluated as their labels land
    estimate: bool = True  # CBPE before labels arrive (binary classification with probabilities)

    @field_validator("version_value")
    @classmethod
    def _has_version(cls, v: str | None) -> str | None:
        if v is not None and "{version}" not in v:
            raise ValueError("must contain {version}, e.g. \"v{version}\" or \"resnet50-v{version}\"")
        return v

    @model_validator(mode="after")
    def _probability_for_classification(self) -> PerformanceConfig:
        if self.task == "regression" and self.probability_column is not None:
            raise ValueError("probability_column is for task: classification")
        if self.window <= 0 or self.horizon < self.window:
            raise ValueError("expected window > 0 and horizon >= window")
        return self
