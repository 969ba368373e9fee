"""What each model's last cycle could not see (a source down, a detector failing, too
little data), kept so `vigil status` and operators read it from the store without the
daemon's memory. One row per model, rewritten by every cycle in the cycle's transaction."""
from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Float, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from monitor.store.tables import Base


class ModelBlindRow(Base):
    __tablename__ = "model_blind"
    model: Mapped[str] = mapped_column(String(100), primary_key=True)
    sources: Mapped[list[Any]] = mapped_column(JSON, default=list)  # one line per blind spot, [] when none
    at: Mapped[float] = mapped_column(Float)  # the cycle's time


def record(s: Session, model: str, blind: list[str], t: float) -> None:
    row = s.get(ModelBlindRow, model)
    if row is None:
        s.add(ModelBlindRow(model=model, sources=list(blind), at=t))
    elif t >= row.at:  # a late cycle of an older time never overwrites a newer one's view
        row.sources, row.at = list(blind), t


def read_all(s: Session) -> dict[str, ModelBlindRow]:
    return {r.model: r for r in s.scalars(select(ModelBlindRow))}
