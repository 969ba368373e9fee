"""Silences as rows: made, listed and expired through the API, the CLI and Slack, read by
every cycle (on any replica: the store is the one place they live)."""
from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Float, Integer, String, Text, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from alerts.matchers import matcher_from_stored
from alerts.silences import Silence, SilenceState
from monitor.store.tables import Base, locked_row


class SilenceRow(Base):
    __tablename__ = "silences"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    matchers: Mapped[list[Any]] = mapped_column(JSON)  # Alertmanager's {name, value, isRegex, isEqual}
    starts_at: Mapped[float] = mapped_column(Float)
    ends_at: Mapped[float] = mapped_column(Float, index=True)
    created_by: Mapped[str] = mapped_column(String(200))
    comment: Mapped[str] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)

    def to_silence(self) -> Silence:
        return Silence(self.id, tuple(matcher_from_stored(m) for m in self.matchers), self.starts_at, self.ends_at,
                       self.created_by, self.comment, self.updated_at)


def add(s: Session, silence: Silence, now: float) -> SilenceRow:
    row = SilenceRow(matchers=[m.to_api() for m in silence.matchers], starts_at=silence.starts_at,
                     ends_at=silence.ends_at, created_by=silence.created_by, comment=silence.comment,
                     created_at=now, updated_at=now)
    s.add(row)
    s.flush()
    return row


def live(s: Session, now: float) -> list[Silence]:
    """Silences not yet expired (active or pending): what a cycle checks."""
    return [r.to_silence() for r in s.scalars(select(SilenceRow).where(SilenceRow.ends_at > now)
                                              .order_by(SilenceRow.id))]


def page(s: Session, now: float, state: SilenceState | None, limit: int, offset: int,
         max_id: int | None = None) -> tuple[list[Silence], int]:
    """One page of silences, newest first, and how many there are in all; `state` as of `now`,
    `max_id`: none made after it (a listing pinned where it began)."""
    q = select(SilenceRow) if max_id is None else select(SilenceRow).where(SilenceRow.id <= max_id)
    if state == SilenceState.EXPIRED:
        q = q.where(SilenceRow.ends_at <= now)
    elif state == SilenceState.ACTIVE:
        q = q.where(SilenceRow.ends_at > now, SilenceRow.starts_at <= now)
    elif state == SilenceState.PENDING:
        q = q.where(SilenceRow.starts_at > now, SilenceRow.ends_at > now)
    total = s.scalar(select(func.count()).select_from(q.subquery())) or 0
    rows = s.scalars(q.order_by(SilenceRow.id.desc()).limit(limit).offset(offset))
    return [r.to_silence() for r in rows], int(total)


def expire(s: Session, silence_id: int, now: float) -> tuple[Silence, bool] | None:
    """End a silence now; False when it had already ended (nothing changes). None: no such silence."""
    row = locked_row(s, SilenceRow, silence_id)  # two expiring it at once: one changes it, one audit
    if row is None:
        return None
    if row.ends_at <= now:
        return row.to_silence(), False
    row.starts_at = min(row.starts_at, now)  # a pending one never starts (Alertmanager does the same)
    row.ends_at = now
    row.updated_at = now
    return row.to_silence(), True
