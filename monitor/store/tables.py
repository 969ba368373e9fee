"""Vigil's own tables (SQLAlchemy declarative), and the statuses stored in them.

One class per table: per-model state, deploy events, incidents, the notification
outbox and where earlier deliveries landed, actions (rollbacks), the hash-chained
audit log, ingested feature samples, reference profiles, drift reports and API
idempotency keys. `monitor.store.repository.Store` reads and writes them.

Statuses are the `StrEnum`s of alerts/ (IncidentStatus, ActionStatus, OutboxStatus),
stored as their plain string values (VARCHAR, no database enum type), so rows read
back as enum members that still compare equal to "open", "done", ... and existing
databases keep working unchanged.
"""
from __future__ import annotations

from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import (
    JSON,
    Boolean,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    inspect,
    update,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from alerts.audit import AuditEntry
from alerts.lifecycle import IncidentStatus
from alerts.outbox import OutboxStatus
from alerts.rollback import ActionStatus
from detectors.records import DeployEvent


def _status_column(enum: type[StrEnum]) -> Enum:
    """VARCHAR(20) holding the enum's values (not its member names), no CHECK constraint."""
    return Enum(enum, native_enum=False, create_constraint=False, length=20,
                values_callable=lambda e: [m.value for m in e])


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


RowT = TypeVar("RowT", bound=Base)


def locked_row(s: Session, row_type: type[RowT], key: Any) -> RowT | None:
    """The row by primary key, locked until the transaction ends, so two people pressing the
    same button at once (an ack, an expiry) are applied one after the other and the second
    sees the first's outcome. SQLite ignores FOR UPDATE and its driver reads outside a
    transaction: a write of nothing first takes the database's write lock, so the read after
    it sees what a writer before committed."""
    if s.get_bind().dialect.name == "sqlite":
        pk = inspect(row_type).primary_key[0]
        s.execute(update(row_type).where(pk == key).values({pk.name: pk})
                  .execution_options(synchronize_session=False))
    return s.get(row_type, key, with_for_update=True, populate_existing=True)


class ModelStateRow(Base):
    __tablename__ = "model_state"
    model: Mapped[str] = mapped_column(String(100), primary_key=True)
    alias_version: Mapped[str | None] = mapped_column(String(40))
    alias_seen_at: Mapped[float | None] = mapped_column(Float)
    # "<registered model>@<alias>" that alias_version was read from (None: a store from before)
    alias_of: Mapped[str | None] = mapped_column(String(400))
    slo_streaks: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    detector_state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    quiet_cycles: Mapped[int] = mapped_column(Integer, default=0)
    last_cycle_at: Mapped[float | None] = mapped_column(Float)


class DeployRow(Base):
    __tablename__ = "deploy_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(100), index=True)
    alias: Mapped[str] = mapped_column(String(100))
    version: Mapped[str] = mapped_column(String(40))
    previous_version: Mapped[str | None] = mapped_column(String(40))
    at: Mapped[float] = mapped_column(Float, index=True)
    source: Mapped[str] = mapped_column(String(20))

    def to_event(self) -> DeployEvent:
        return DeployEvent(self.model, self.alias, self.version, self.previous_version, self.at, self.source)


class IncidentRow(Base):
    __tablename__ = "incidents"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(100), index=True)
    status: Mapped[IncidentStatus] = mapped_column(_status_column(IncidentStatus), index=True)
    severity: Mapped[str] = mapped_column(String(20))
    title: Mapped[str] = mapped_column(Text)
    onset: Mapped[float] = mapped_column(Float)
    opened_at: Mapped[float] = mapped_column(Float, index=True)
    updated_at: Mapped[float] = mapped_column(Float)
    resolved_at: Mapped[float | None] = mapped_column(Float)
    cold_start: Mapped[bool] = mapped_column(Boolean, default=False)
    reasons: Mapped[list[Any]] = mapped_column(JSON, default=list)
    findings: Mapped[list[Any]] = mapped_column(JSON, default=list)
    causes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    fingerprint: Mapped[str] = mapped_column(String(64), index=True)
    acknowledged_by: Mapped[str | None] = mapped_column(String(200))
    # The severity the ack was given at (None: acked before 0007, read as the severity last told).
    acknowledged_severity: Mapped[str | None] = mapped_column(String(16))
    silenced_until: Mapped[float | None] = mapped_column(Float)
    last_notified_at: Mapped[float | None] = mapped_column(Float)
    notified_digest: Mapped[str | None] = mapped_column(String(64))
    # Slack buttons and links name an incident by id: SQLite must never give a purged one's
    # id to a new incident (AUTOINCREMENT; PostgreSQL's sequences never reuse one).
    __table_args__ = {"sqlite_autoincrement": True}


class OutboxRow(Base):
    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    notifier: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(20))
    key: Mapped[str] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[OutboxStatus] = mapped_column(_status_column(OutboxStatus), default=OutboxStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[float] = mapped_column(Float)
    next_attempt_at: Mapped[float] = mapped_column(Float)
    delivered_at: Mapped[float | None] = mapped_column(Float)
    last_error: Mapped[str | None] = mapped_column(Text)
    # Receivers deduplicate on the outbox id (webhook Idempotency-Key, Slack's lookup of an
    # uncertain send): a purged row's id given again would make a new alert the old one's repeat.
    __table_args__ = (Index("ix_outbox_pending", "status", "next_attempt_at"), {"sqlite_autoincrement": True})


class MessageRefRow(Base):
    """Where an earlier delivery for a key landed (Slack channel + ts), to update it in place."""

    __tablename__ = "message_refs"
    notifier: Mapped[str] = mapped_column(String(40), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    ref: Mapped[dict[str, Any]] = mapped_column(JSON)


class ActionRow(Base):
    __tablename__ = "actions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(100), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # rollback
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"))
    from_version: Mapped[str | None] = mapped_column(String(40))
    to_version: Mapped[str | None] = mapped_column(String(40))
    status: Mapped[ActionStatus] = mapped_column(_status_column(ActionStatus))
    reason: Mapped[str] = mapped_column(Text)
    detail: Mapped[str] = mapped_column(Text, default="")
    actor: Mapped[str] = mapped_column(String(200))
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    at: Mapped[float] = mapped_column(Float, index=True)

    def to_dict(self) -> dict[str, Any]:
        """The action as notifications, the API and replay output show it."""
        return {"kind": self.kind, "from_version": self.from_version, "to_version": self.to_version,
                "status": self.status, "at": self.at, "reason": self.reason, "detail": self.detail,
                "actor": self.actor, "dry_run": self.dry_run}


class AuditRow(Base):
    __tablename__ = "audit_log"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[float] = mapped_column(Float)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100))
    target: Mapped[str] = mapped_column(String(200))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)

    def to_entry(self) -> AuditEntry:
        return AuditEntry(self.seq, self.at, self.actor, self.action, self.target, self.detail, self.prev_hash,
                          self.hash)


class SampleRow(Base):
    __tablename__ = "samples"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(100))
    ts: Mapped[float] = mapped_column(Float)
    record: Mapped[dict[str, Any]] = mapped_column(JSON)
    __table_args__ = (Index("ix_samples_model_ts", "model", "ts"),)


class ProfileRow(Base):
    __tablename__ = "reference_profiles"
    model: Mapped[str] = mapped_column(String(100), primary_key=True)
    version: Mapped[str] = mapped_column(String(40), primary_key=True)
    source: Mapped[str] = mapped_column(Text, primary_key=True)  # reference path it was built from
    profile: Mapped[bytes] = mapped_column(LargeBinary)  # rows written before compression; b"" since
    profile_gz: Mapped[bytes | None] = mapped_column(LargeBinary)  # gzip of the profile (monitor/store/reports.py)
    created_at: Mapped[float] = mapped_column(Float)


class DriftReportRow(Base):
    __tablename__ = "drift_reports"
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), primary_key=True)
    html: Mapped[str] = mapped_column(Text)  # rows written before compression; "" since
    html_gz: Mapped[bytes | None] = mapped_column(LargeBinary)  # gzip of the HTML (monitor/store/reports.py)
    created_at: Mapped[float] = mapped_column(Float)


class IdempotencyRow(Base):
    __tablename__ = "idempotency_keys"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    scope: Mapped[str] = mapped_column(String(200), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[float] = mapped_column(Float)
    __table_args__ = (UniqueConstraint("key", "scope"), Index("ix_idempotency_created_at", "created_at"))
