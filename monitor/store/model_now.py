"""What each model's last committed cycle saw, for GET /v1/models: its step and
severity, what it could not see (blind) and the drift per feature. One row per model,
overwritten each cycle, so any process (a `vigil serve`, another replica) answers with
the latest cycle whoever ran it.

The drift per feature (50 features: 5.6 KB of JSON) is stored as zlib'd JSON in
`drift_gz` (about 1.9 KB: a row fits a page instead of spilling onto two overflow pages,
rewritten every cycle); rows written before keep it in `drift`, read as they are.
"""
from __future__ import annotations

import json
import zlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import JSON, Float, LargeBinary, String, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from detectors.records import json_safe
from monitor.store.tables import Base


class ModelNowRow(Base):
    __tablename__ = "model_now"
    model: Mapped[str] = mapped_column(String(100), primary_key=True)
    at: Mapped[float] = mapped_column(Float)  # the cycle's time
    step: Mapped[str] = mapped_column(String(20))
    severity: Mapped[str | None] = mapped_column(String(20))
    duration_s: Mapped[float] = mapped_column(Float)
    blind: Mapped[list[Any]] = mapped_column(JSON, default=list)
    drift: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # rows written before drift_gz; {} since
    drift_gz: Mapped[bytes | None] = mapped_column(LargeBinary)  # zlib of {feature: {statistic: value}} as JSON


@dataclass(frozen=True)
class ModelNow:
    model: str
    at: float
    step: str
    severity: str | None
    duration_s: float
    blind: list[str] = field(default_factory=list)
    drift: dict[str, dict[str, float]] = field(default_factory=dict)


def drift_by_feature(statistics: list[tuple[str, str, float]]) -> dict[str, dict[str, float]]:
    """[(feature, statistic, value)] -> {feature: {statistic: value}}."""
    out: dict[str, dict[str, float]] = {}
    for feature, stat, value in statistics:
        out.setdefault(feature, {})[stat] = value
    return out


def save_model_now(tx: Callable[[], AbstractContextManager[Session]], now: ModelNow) -> None:
    """Overwrite the model's row (`tx` is `Store.tx`); non-finite values are stored as null.
    One UPDATE a cycle, without reading the row first (its drift is a kilobyte or two); an
    INSERT the first time. Only the model's own cycle writes its row."""
    values: dict[str, Any] = {"at": now.at, "step": now.step, "severity": now.severity,
                              "duration_s": now.duration_s, "blind": list(now.blind), "drift": {},
                              "drift_gz": pack_drift(now.drift)}
    with tx() as s:
        done: Any = s.execute(update(ModelNowRow).where(ModelNowRow.model == now.model).values(**values)
                              .execution_options(synchronize_session=False))
        if not done.rowcount:
            s.add(ModelNowRow(model=now.model, **values))


def read_model_now(tx: Callable[[], AbstractContextManager[Session]], model: str) -> ModelNow | None:
    with tx() as s:
        row = s.get(ModelNowRow, model)
        if row is None:
            return None
        return ModelNow(model=row.model, at=row.at, step=row.step, severity=row.severity,
                        duration_s=row.duration_s, blind=list(row.blind or []), drift=row_drift(row))


def pack_drift(drift: dict[str, dict[str, float]]) -> bytes:
    """Non-finite values as null, as the JSON column held them."""
    return zlib.compress(json.dumps(json_safe(drift), separators=(",", ":")).encode(), 6)


def row_drift(row: ModelNowRow) -> dict[str, Any]:
    """The row's drift, compressed or (written before) as JSON."""
    if row.drift_gz is not None:
        return dict(json.loads(zlib.decompress(row.drift_gz)))
    return dict(row.drift or {})
