"""Delayed labels (ground truth) and the latest performance report per model.

`labels`: one row per (model, prediction id), the label and when it was true (`ts`) and
received (`received_at`). A label sent again for the same prediction replaces the first
(a correction) unless it is older, so the row is an upsert and a batch sent twice, even
after a correction, changes nothing.
`label_sends`: when a label dated after the server's clock was first received, so that a
retry of it reads as that first arrival (see `Labels.add`).
`performance_reports`: the last cycle's performance report of each model, for the API.
"""
from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Float, Index, String, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, Session, mapped_column

from detectors.records import json_safe
from monitor.store.tables import Base

UPSERT_BATCH = 5000  # ids per IN list: SQLite allows 32,766 bound values


class LabelRow(Base):
    __tablename__ = "labels"
    model: Mapped[str] = mapped_column(String(100), primary_key=True)
    prediction_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    label: Mapped[float] = mapped_column(Float)
    ts: Mapped[float] = mapped_column(Float)
    received_at: Mapped[float] = mapped_column(Float)
    __table_args__ = (Index("ix_labels_model_ts", "model", "ts"),)


class LabelSendRow(Base):
    """A label dated after the server's clock when it first came: the label and date as sent,
    and when that was. Only such labels: every other label's date is its own."""

    __tablename__ = "label_sends"
    model: Mapped[str] = mapped_column(String(100), primary_key=True)
    prediction_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    sent_ts: Mapped[float] = mapped_column(Float, primary_key=True)
    label: Mapped[float] = mapped_column(Float, primary_key=True)
    first_seen: Mapped[float] = mapped_column(Float)


class PerformanceReportRow(Base):
    __tablename__ = "performance_reports"
    model: Mapped[str] = mapped_column(String(100), primary_key=True)
    at: Mapped[float] = mapped_column(Float)
    report: Mapped[dict[str, Any]] = mapped_column()


@dataclass(frozen=True)
class Label:
    """One accepted label: the prediction it belongs to, its value and when it was true."""

    prediction_id: str
    label: float
    ts: float


class Labels:
    """Labels and performance reports in the store (`Store.labels`)."""

    def __init__(self, tx: Callable[[], AbstractContextManager[Session]], dialect: str) -> None:
        self._tx = tx
        self._insert = pg_insert if dialect == "postgresql" else sqlite_insert

    def add(self, model: str, labels: list[Label], now: float, *, posted: bool = False) -> int:
        """Upsert every label; returns how many were written (a prediction sent twice counts twice).
        `posted`: the labels arrived at `now` (the API), so one dated later is read as known at
        its first arrival (see `_known_at`); otherwise each is stored with its own date."""
        # The label known last wins (the later time; of equal times the later sent), within the
        # batch too: PostgreSQL refuses an upsert that touches one row twice (SQLite applies
        # both), so only that one is sent. A stored label known later is kept: a client's retry
        # of an old batch (at-least-once delivery) used to undo the correction sent since.
        with self._tx() as s:
            newest: dict[str, Label] = {}
            for lb in self._known_at(s, model, labels, now) if posted else labels:
                kept = newest.get(lb.prediction_id)
                if kept is None or lb.ts >= kept.ts:
                    newest[lb.prediction_id] = lb
            rows = [{"model": model, "prediction_id": lb.prediction_id, "label": lb.label, "ts": lb.ts,
                     "received_at": now} for lb in newest.values()]
            if rows:
                # One statement, its rows as parameters (SQLAlchemy batches them): each 5,000 as a
                # statement of their own values was compiled anew, 35 s for a full batch.
                stmt = self._insert(LabelRow)
                s.execute(stmt.on_conflict_do_update(
                    index_elements=["model", "prediction_id"],
                    set_={"label": stmt.excluded.label, "ts": stmt.excluded.ts,
                          "received_at": stmt.excluded.received_at},
                    where=LabelRow.ts <= stmt.excluded.ts), rows)
        return len(labels)

    def _known_at(self, s: Session, model: str, labels: list[Label], now: float) -> list[Label]:
        """Each label with the time it became known: its date, but never after `now` (a label is
        known by the time it arrives: a local time sent as UTC, a mistyped year), nor after the
        first arrival of the same label and date. Read as arriving when retried, a future-dated
        batch's retry (at-least-once delivery) came later than the correction sent since and
        undid it; the first arrival of each such label is kept in `label_sends`."""
        future = {(lb.prediction_id, lb.ts, lb.label) for lb in labels if lb.ts > now}
        rows = [{"model": model, "prediction_id": p, "sent_ts": t, "label": v, "first_seen": now} for p, t, v in future]
        if rows:  # a retry's rows are there: the first arrival stands
            s.execute(self._insert(LabelSendRow).on_conflict_do_nothing(), rows)
        if not future and s.scalar(select(LabelSendRow.model).where(LabelSendRow.model == model).limit(1)) is None:
            return [Label(lb.prediction_id, lb.label, min(lb.ts, now)) for lb in labels]  # the usual case
        ids = sorted({lb.prediction_id for lb in labels})
        seen: dict[tuple[str, float, float], float] = {}
        for i in range(0, len(ids), UPSERT_BATCH):
            seen.update(((p, t, v), first) for p, t, v, first in s.execute(select(
                LabelSendRow.prediction_id, LabelSendRow.sent_ts, LabelSendRow.label, LabelSendRow.first_seen).where(
                LabelSendRow.model == model, LabelSendRow.prediction_id.in_(ids[i:i + UPSERT_BATCH]))))
        return [Label(lb.prediction_id, lb.label, min(lb.ts, now, seen.get((lb.prediction_id, lb.ts, lb.label), now)))
                for lb in labels]

    def between(self, model: str, start: float, end: float) -> list[Label]:
        """Labels true in [start, end]."""
        with self._tx() as s:
            rows = s.execute(select(LabelRow.prediction_id, LabelRow.label, LabelRow.ts).where(
                LabelRow.model == model, LabelRow.ts >= start, LabelRow.ts <= end))
            return [Label(pid, float(v), float(ts)) for pid, v, ts in rows]

    def count(self, model: str) -> int:
        with self._tx() as s:
            return int(s.scalar(select(func.count()).select_from(LabelRow).where(LabelRow.model == model)) or 0)

    def save_report(self, model: str, at: float, report: dict[str, Any]) -> None:
        with self._tx() as s:
            s.merge(PerformanceReportRow(model=model, at=at, report=json_safe(report)))

    def report(self, model: str) -> dict[str, Any] | None:
        with self._tx() as s:
            row = s.get(PerformanceReportRow, model)
            return dict(row.report) if row else None
