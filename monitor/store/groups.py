"""Shared-cause groups: one open group per key, decided in the store so that replicas
owning different member models agree on it.

`open_key` holds the group's key while it is open and NULL once resolved; it is unique,
and NULLs never collide (SQLite and PostgreSQL alike), so "the open group for this key"
is one row whoever asks. The member's cycle first makes sure the group exists in its own
short transaction (the loser of a race sees the winner's row), then locks it
(`FOR UPDATE` on PostgreSQL; SQLite has one writer at a time) in the transaction that
writes the incident, so two replicas never both decide to page the group.
"""
from __future__ import annotations

from collections.abc import Callable, Collection
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Integer, String, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from alerts.grouping import GroupState, Member
from monitor.store.tables import Base


class AlertGroupRow(Base):
    __tablename__ = "alert_groups"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(300), index=True)
    open_key: Mapped[str | None] = mapped_column(String(300), unique=True)
    cause_kind: Mapped[str] = mapped_column(String(40))
    cause: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[float] = mapped_column(Float)
    notified_at: Mapped[float | None] = mapped_column(Float)
    notified_digest: Mapped[str | None] = mapped_column(String(64))
    notified_severity: Mapped[str | None] = mapped_column(String(20))
    # The last page that told someone (not an edit): grouping.repeat_interval counts from it.
    told_at: Mapped[float | None] = mapped_column(Float)
    resolved_at: Mapped[float | None] = mapped_column(Float)


class GroupMemberRow(Base):
    __tablename__ = "alert_group_members"
    group_id: Mapped[int] = mapped_column(ForeignKey("alert_groups.id"), primary_key=True)
    model: Mapped[str] = mapped_column(String(100), primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)
    severity: Mapped[str] = mapped_column(String(20))
    open: Mapped[bool] = mapped_column(default=True)
    joined_at: Mapped[float] = mapped_column(Float)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # title, top cause, evidence


def ensure(tx: Callable[[], AbstractContextManager[Session]], key: str, cause_kind: str, cause: str,
           now: float) -> None:
    """The open group for `key` exists after this (made now, or by whoever was first)."""
    try:
        with tx() as s:
            if s.scalars(select(AlertGroupRow.id).where(AlertGroupRow.open_key == key)).first() is None:
                s.add(AlertGroupRow(key=key, open_key=key, cause_kind=cause_kind, cause=cause[:300],
                                    created_at=now))
    except IntegrityError:
        pass  # another replica made it first: the same group


def locked(s: Session, key: str) -> AlertGroupRow | None:
    return s.scalars(select(AlertGroupRow).where(AlertGroupRow.open_key == key).with_for_update()).first()


def create_in(s: Session, key: str, cause_kind: str, cause: str, now: float) -> AlertGroupRow:
    """Inside the caller's transaction, when the group closed since `ensure` (rare)."""
    row = AlertGroupRow(key=key, open_key=key, cause_kind=cause_kind, cause=cause[:300], created_at=now)
    s.add(row)
    s.flush()
    return row


def wait_from_first_member(s: Session, group: AlertGroupRow, now: float) -> None:
    """A group nobody has joined yet starts its group_wait now. `ensure` makes the group in
    its own transaction before the member's; a cycle that failed in between (a crash, a lost
    lease) left it empty, and its old `created_at` let the next member skip the wait and
    page on its own before the group paged for it and the others."""
    if group.notified_at is None and s.scalar(
            select(GroupMemberRow.model).where(GroupMemberRow.group_id == group.id).limit(1)) is None:
        group.created_at = now


def members(s: Session, group_id: int) -> list[GroupMemberRow]:
    return list(s.scalars(select(GroupMemberRow).where(GroupMemberRow.group_id == group_id)
                          .order_by(GroupMemberRow.joined_at, GroupMemberRow.model)))


def join(s: Session, group: AlertGroupRow, model: str, incident_id: int, severity: str, is_open: bool,
         summary: dict[str, Any], now: float) -> None:
    row = s.get(GroupMemberRow, (group.id, model))
    if row is None:
        s.add(GroupMemberRow(group_id=group.id, model=model, incident_id=incident_id, severity=severity,
                             open=is_open, joined_at=now, summary=summary))
        s.flush()
        return
    row.incident_id, row.severity, row.open, row.summary = incident_id, severity, is_open, summary


def open_group_of(s: Session, model: str, incident_id: int) -> AlertGroupRow | None:
    """The open group this incident is a member of, locked."""
    q = (select(AlertGroupRow).join(GroupMemberRow, GroupMemberRow.group_id == AlertGroupRow.id)
         .where(GroupMemberRow.model == model, GroupMemberRow.incident_id == incident_id,
                AlertGroupRow.open_key.is_not(None)).with_for_update(of=AlertGroupRow))
    return s.scalars(q).first()


def paged_for(s: Session, model: str, incident_id: int) -> bool:
    """Whether an open group that has paged counts this incident among its open members:
    the group speaks for it to the receivers."""
    q = (select(AlertGroupRow.id).join(GroupMemberRow, GroupMemberRow.group_id == AlertGroupRow.id)
         .where(GroupMemberRow.model == model, GroupMemberRow.incident_id == incident_id,
                GroupMemberRow.open.is_(True), AlertGroupRow.open_key.is_not(None),
                AlertGroupRow.notified_at.is_not(None)).limit(1))
    return s.scalar(q) is not None


def state(group: AlertGroupRow, rows: list[GroupMemberRow], muted: Collection[str] = ()) -> GroupState:
    """`muted`: the members a silence or their maintenance window mutes now."""
    return GroupState(group.created_at, group.notified_at, group.notified_digest,
                      tuple(Member(r.model, r.severity, r.open, r.model in muted,
                                   str((r.summary or {}).get("evidence") or "")) for r in rows), group.told_at)


def close(group: AlertGroupRow, now: float) -> None:
    group.open_key = None
    group.resolved_at = now


def firing(s: Session) -> list[tuple[AlertGroupRow, list[GroupMemberRow]]]:
    """Open groups with their members (for inhibition: a group that fires mutes its members)."""
    groups = list(s.scalars(select(AlertGroupRow).where(AlertGroupRow.open_key.is_not(None))))
    if not groups:
        return []
    # Every cycle asks: one query for all the groups' members, not one per group.
    by_group: dict[int, list[GroupMemberRow]] = {g.id: [] for g in groups}
    for r in s.scalars(select(GroupMemberRow).where(GroupMemberRow.group_id.in_(list(by_group)))
                       .order_by(GroupMemberRow.joined_at, GroupMemberRow.model)):
        by_group[r.group_id].append(r)
    return [(g, by_group[g.id]) for g in groups]
