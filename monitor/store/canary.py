"""Canary tables: each cycle's verdict table, and each challenger version's run.

- `canary_verdicts`: one row per cycle that judged a challenger: both versions, the
  overall verdict and every metric's numbers (what the API, Slack and Grafana show).
- `canary_runs`: one row per (model, challenger version): cycles judged, passes in a
  row, and where the run ended (running, pulled, promotion suggested, promoted), so a
  pull or a promotion is asked for once and a restart resumes the streak.

New tables only: stores made before these existed gain them through `create_all`.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Float, Index, Integer, Select, String, Text, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from alerts.rollback import ActionStatus
from monitor.store.intents import RollbackIntentRow
from monitor.store.tables import ActionRow, Base


class CanaryVerdictRow(Base):
    __tablename__ = "canary_verdicts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(100))
    t: Mapped[float] = mapped_column(Float)
    champion_version: Mapped[str | None] = mapped_column(String(40))
    challenger_version: Mapped[str] = mapped_column(String(40))
    overall: Mapped[str] = mapped_column(String(20))  # pass | marginal | fail | inconclusive
    metrics: Mapped[list[Any]] = mapped_column(JSON)  # MetricVerdict.to_dict() each
    __table_args__ = (Index("ix_canary_verdicts_model_t", "model", "t"),)

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "t": self.t, "champion_version": self.champion_version,
                "challenger_version": self.challenger_version, "overall": self.overall, "metrics": self.metrics}


class CanaryRunRow(Base):
    __tablename__ = "canary_runs"
    model: Mapped[str] = mapped_column(String(100), primary_key=True)
    challenger_version: Mapped[str] = mapped_column(String(40), primary_key=True)
    # running | pulled | dry_run (a pull a dry-run policy only recorded) | suggested | promoted
    status: Mapped[str] = mapped_column(String(20), default="running")
    cycles: Mapped[int] = mapped_column(Integer, default=0)
    pass_streak: Mapped[int] = mapped_column(Integer, default=0)
    first_seen_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    detail: Mapped[str] = mapped_column(Text, default="")

    def to_dict(self) -> dict[str, Any]:
        return {"challenger_version": self.challenger_version, "status": self.status, "cycles": self.cycles,
                "pass_streak": self.pass_streak, "first_seen_at": self.first_seen_at,
                "updated_at": self.updated_at, "detail": self.detail}


def run_row(s: Session, model: str, version: str, now: float) -> CanaryRunRow:
    row = s.get(CanaryRunRow, (model, version), with_for_update=True)
    if row is None:
        row = CanaryRunRow(model=model, challenger_version=version, status="running", cycles=0, pass_streak=0,
                           first_seen_at=now, updated_at=now, detail="")
        s.add(row)
        s.flush()
    return row


def settle_run(s: Session, model: str, challenger: str | None, done_as: str | None, detail: str, now: float
               ) -> None:
    """Where a finished pull or promotion leaves its run, in the transaction recording the
    outcome, whoever drove it. Done (`done_as`: "pulled", "promoted"): so even when a crash
    left the cycle that asked no time to say so, and the start-up reconcile finished it
    (a promoted version left "running" was promoted again once the champion moved back).
    Given up (None): it moved nothing for good, the run is "running" again, so the
    challenger (still taking traffic) is judged and acted on like before."""
    row = s.get(CanaryRunRow, (model, challenger), with_for_update=True) if challenger is not None else None
    if row is None:
        return
    if done_as is not None:
        row.status, row.detail, row.updated_at = done_as, detail, now
    elif row.status in ("pulled", "promoted"):
        row.status, row.detail, row.updated_at = "running", detail, now


def _done_pulls(model: str, challenger: str) -> Select[Any]:
    """The finished canary pulls of this version (their intents joined to their actions)."""
    return (select().select_from(RollbackIntentRow).join(ActionRow, ActionRow.id == RollbackIntentRow.action_id)
            .where(RollbackIntentRow.model == model, RollbackIntentRow.from_version == challenger,
                   RollbackIntentRow.status == ActionStatus.DONE, ActionRow.kind == "canary_pull"))


def pulled_at(s: Session, model: str, challenger: str) -> float | None:
    """When this version's latest pull finished (None: never pulled): its predictions
    before then are what pulled it, the serving layer pinned to the champion since."""
    return s.scalar(_done_pulls(model, challenger).add_columns(func.max(RollbackIntentRow.updated_at)))


def pulls_since(s: Session, model: str, challenger: str, since: float) -> int:
    """How many pulls of this version finished at or after `since`."""
    q = _done_pulls(model, challenger).add_columns(func.count()).where(RollbackIntentRow.updated_at >= since)
    return int(s.scalar(q) or 0)


def latest_verdicts(s: Session, model: str, limit: int = 1) -> list[CanaryVerdictRow]:
    q = select(CanaryVerdictRow).where(CanaryVerdictRow.model == model)
    return list(s.scalars(q.order_by(CanaryVerdictRow.t.desc(), CanaryVerdictRow.id.desc()).limit(limit)))


def last_verdict_of(s: Session, model: str, challenger: str) -> CanaryVerdictRow | None:
    """The latest verdict recorded for this challenger version (None: never judged)."""
    q = select(CanaryVerdictRow).where(CanaryVerdictRow.model == model,
                                       CanaryVerdictRow.challenger_version == challenger)
    return s.scalars(q.order_by(CanaryVerdictRow.t.desc(), CanaryVerdictRow.id.desc()).limit(1)).first()


def runs(s: Session, model: str) -> list[CanaryRunRow]:
    q = select(CanaryRunRow).where(CanaryRunRow.model == model).order_by(CanaryRunRow.first_seen_at.desc())
    return list(s.scalars(q))
