"""Request and response bodies: the OpenAPI contract's shapes.

Request bodies forbid unknown fields, so a misspelt option is a 422 naming it rather
than a silently ignored setting.
"""
from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema, field_validator

from monitor.api.ingest import MAX_ABS_NUMBER, TIMESTAMP
from monitor.store.repository import IncidentRow

# Ids and sequence numbers are 64-bit signed integers in every store: a larger one from a
# client is a 4xx naming the field at the edge, not an OverflowError in the driver.
MAX_ID = 2**63 - 1
# PostgreSQL's text columns cannot hold NUL (0x00): a field stored as text refuses it here, a
# 422 naming the field (errors.py words it), not a 500 from the driver (SQLite stored it).
NO_NUL = r"^[^\x00]*$"
MIN_REASON = 3
# What `_words` checks, for the OpenAPI document (Python's `\s` is `str.isspace`): three
# characters that are neither spaces nor NUL, anywhere in the text.
REASON_PATTERN = r"^(?:[^\x00]*[^\s\x00]){3}[^\x00]*$"


def _words(reason: str) -> str:
    # Three spaces passed min_length: the audit log then kept a blank "why" for a rollback.
    if sum(not c.isspace() for c in reason) < MIN_REASON:
        raise ValueError(f"expected why, in words: at least {MIN_REASON} characters besides spaces")
    return reason


Reason = Annotated[str, Field(min_length=MIN_REASON, max_length=2000, pattern=NO_NUL,
                              json_schema_extra={"pattern": REASON_PATTERN}), AfterValidator(_words)]


class RollbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Reason = Field(description="Why: recorded in the audit log")
    to_version: str | None = Field(
        None, pattern=r"^[0-9]{1,18}$",  # past 64 bits the registry's own store fails (a 502, not the caller's 422)
        description="A registry version number. Default: the last version known good (served cleanly), never "
                    "one an open or recent incident blames")
    dry_run: bool = False
    force: bool = Field(False, description="Needed, with the reason, to move to a version an incident blames")

    @field_validator("to_version")
    @classmethod
    def _canonical(cls, v: str | None) -> str | None:
        # MLflow reads a version as a number: "02" moved the alias to v2, a version the blame
        # check (which compares text) had refused as "2" without force.
        return None if v is None else str(int(v))


class RollbackResponse(BaseModel):
    model: str
    status: Literal["done", "dry_run", "noop", "failed", "pending"]
    from_version: str | None
    to_version: str
    detail: str
    actor: str
    at: float
    incident_id: int | None = Field(None, description="the incident this rollback answers (its actions show it)")
    watch: str | None = Field(None, description="where to follow it: the incident (its actions), else the model "
                                                "(the version serving)")


class RollbackCancelRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Reason = Field(description="Why: recorded in the audit log and shown on the incident")


class RollbackCancelResponse(BaseModel):
    model: str
    status: Literal["cancelled", "done"] = Field(description="cancelled: nothing moved and nothing will; done: the "
                                                             "rollback had moved already, nothing moved back")
    intent_id: int | None
    from_version: str | None
    to_version: str | None
    detail: str
    actor: str
    at: float
    incident_id: int | None = None
    watch: str | None = None


def rollback_watch(model: str, incident_id: int | None) -> str:
    """Where a rollback's progress shows: its incident's actions, else the model's serving version."""
    return f"/v1/incidents/{incident_id}" if incident_id is not None else f"/v1/models/{model}"


class SilenceRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    duration_s: float = Field(gt=0, le=30 * 86400, allow_inf_nan=False,
                              description="How long to keep the incident quiet")
    reason: Reason


_NUMBER = {"type": "number", "minimum": -MAX_ABS_NUMBER, "maximum": MAX_ABS_NUMBER}
# What monitor.api.ingest accepts, said in the schema: a record's values are checked there
# (every bad field of every record named in one 422), not by pydantic (first error only).
SAMPLE_RECORD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": [TIMESTAMP],
    "properties": {TIMESTAMP: {
        "anyOf": [{"type": "number", "minimum": 0, "maximum": 2.5e20}, {"type": "string", "format": "date-time"}],
        "description": "RFC 3339 (naive = UTC) or epoch seconds (milliseconds and nanoseconds recognised by "
                       "size), between 1970 and 9999"}},
    "additionalProperties": {
        "anyOf": [_NUMBER, {"type": "string"}, {"type": "boolean"}, {"type": "null"}],
        "description": "A feature or the prediction; numeric features take numbers or null"},
}
SampleRecord = Annotated[dict[str, Any], WithJsonSchema(SAMPLE_RECORD_SCHEMA)]


class SamplesRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str = Field(max_length=200)
    records: list[SampleRecord] = Field(min_length=1, max_length=100_000)


class IncidentOut(BaseModel):
    id: int
    model: str
    status: str
    severity: str
    title: str
    onset: float
    opened_at: float
    updated_at: float
    resolved_at: float | None
    cold_start: bool
    acknowledged_by: str | None
    silenced_until: float | None
    reasons: list[Any]
    findings: list[dict[str, Any]]
    causes: list[dict[str, Any]]
    actions: list[dict[str, Any]] = []
    drift_report: str | None = None
    suppressed: list[dict[str, Any]] = Field(
        default=[], description="GET /v1/incidents/{id} only: its messages a silence made after they were queued "
                                "held back at send time (`why` names the silence)")

    @classmethod
    def from_row(cls, row: IncidentRow, actions: list[dict[str, Any]] | None = None,
                 report: bool = False) -> IncidentOut:
        """`report`: the incident has a drift report, so the body links to it."""
        return cls(id=row.id, model=row.model, status=row.status, severity=row.severity, title=row.title,
                   onset=row.onset, opened_at=row.opened_at, updated_at=row.updated_at,
                   resolved_at=row.resolved_at, cold_start=row.cold_start, acknowledged_by=row.acknowledged_by,
                   silenced_until=row.silenced_until, reasons=row.reasons, findings=row.findings,
                   causes=row.causes, actions=actions or [],
                   drift_report=f"/v1/incidents/{row.id}/drift-report" if report else None)


class SamplesAccepted(BaseModel):
    accepted: int = Field(description="records stored")
    model: str


class RollbackFailed(RollbackResponse):
    """A 502: the error body's `error` next to the outcome (status `failed`)."""

    error: str


class SourceOut(BaseModel):
    status: Literal["up", "down", "unknown"]
    url: str
    detail: str
    checked_at: float | None


class Readiness(BaseModel):
    """`/readyz`, ready (200) or not (503): the same shape, `reasons` says why not."""

    status: Literal["ready", "degraded", "not ready"]
    reasons: list[str]
    store: str = Field(description="`up`, or `down: <why>`")
    sources: dict[str, SourceOut]
    outbox: dict[str, int] = Field(description="outbox rows per state")
    cycles: dict[str, Any] = Field(description="`problems` and, per model, what the last cycles did")


class CanaryVerdictOut(BaseModel):
    """One cycle's canary verdict: `metrics` are detectors.canary.MetricVerdict records
    (metric, verdict, reason, champion, challenger, effect, p_value, n_champion, n_challenger,
    min_points, alpha, fail_effect, marginal_effect, fail_above, fail_below, kind)."""

    model: str
    t: float
    champion_version: str | None
    challenger_version: str
    overall: str  # pass | marginal | fail | inconclusive
    metrics: list[dict[str, Any]]


class CanaryRunOut(BaseModel):
    challenger_version: str
    status: str  # running | pulled | dry_run | suggested | promoted
    cycles: int
    pass_streak: int
    first_seen_at: float
    updated_at: float
    detail: str


class CanaryOut(BaseModel):
    model: str
    alias: str
    version_label: str
    promote_after_cycles: int
    verdicts: list[CanaryVerdictOut]
    runs: list[CanaryRunOut]
# --------------------------------------------------------------------------- labels, performance
class LabelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # An integer id may come as 55.0 (JSON Schema's "integer" allows it): lax, so it is 55. Its
    # length as text (at most 200 characters, like a text id) is checked with the batch.
    prediction_id: Annotated[str, Field(min_length=1, max_length=200, pattern=NO_NUL)] | int = Field(
        description="The id the prediction was logged with (the samples' performance.id_column)")
    label: Annotated[float, Field(strict=True, allow_inf_nan=False)] | Annotated[bool, Field(strict=True)] = Field(
        description="The ground truth: a class (0/1) for classification, a number for regression")
    timestamp: str | Annotated[float, Field(strict=True, allow_inf_nan=False)] = Field(
        description="When the label became known: RFC 3339 or epoch seconds")

    @field_validator("prediction_id", mode="before")
    @classmethod
    def _not_a_boolean(cls, v: object) -> object:
        # Lax mode reads true as 1: every label sent with a boolean id joined prediction "1".
        if isinstance(v, bool):
            raise ValueError(f"expected a text or integer id, got {str(v).lower()}")
        return v

    # One error naming the field, not one per branch of its union naming fields nobody sent
    # ("labels.0.label.float: Input should be a valid number", "labels.0.label.bool: ...").
    @field_validator("label", mode="before")
    @classmethod
    def _a_number(cls, v: object) -> object:
        if not isinstance(v, int | float):  # bool is an int
            raise ValueError(f"expected a number (for a classifier a class: 0 or 1), got {_type_shown(v)}")
        return v

    @field_validator("timestamp", mode="before")
    @classmethod
    def _a_time(cls, v: object) -> object:
        if isinstance(v, bool) or not isinstance(v, str | int | float):
            raise ValueError(f"expected RFC3339 text or epoch seconds, got {_type_shown(v)}")
        return v


def _type_shown(v: object) -> str:
    text = "null" if v is None else str(v).lower() if isinstance(v, bool) else repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


class LabelsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str = Field(max_length=200)
    labels: list[LabelIn] = Field(min_length=1, max_length=100_000)


class LabelsAccepted(BaseModel):
    accepted: int = Field(description="labels stored (a repeated prediction id replaces its earlier label)")
    model: str


class PerformanceWindowOut(BaseModel):
    version: str
    start: float
    end: float
    predictions: int
    labelled: int
    coverage: float = Field(description="share of the window's predictions that have a label")
    realised: dict[str, float | None] | None = Field(description="null: too few labels yet (see note)")
    estimated: dict[str, float | None] | None = Field(description="CBPE before labels arrive; null: none")
    delay_median_s: float | None
    delay_max_s: float | None
    note: str


class PerformanceOut(BaseModel):
    model: str
    at: float = Field(description="time of the cycle that computed it")
    task: str
    reference: dict[str, float | None] = Field(description="realised figures over the reference period")
    reference_labels: int
    drop_pct: float
    min_labels: int
    windows: list[PerformanceWindowOut]
    note: str = ""
