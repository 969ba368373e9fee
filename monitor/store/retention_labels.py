"""The purge of delayed labels (`labels`), which follow the samples' retention.

A label is read twice: by the horizon's windows (labels true in the last `horizon`) and by
the reference refit (every label true since the reference period began, joined to the
reference's predictions). A backfill posts the reference's labels with the day it ran as
their time, so purging labels by their own time alone emptied a backfilled reference two
weeks later and the model's performance went blind. A label older than both the samples'
retention and the horizon therefore stays while its prediction is one of the reference
period's kept predictions; the rest go, `batch` rows a transaction.
"""
from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from sqlalchemy import ColumnElement, and_, delete, select
from sqlalchemy.orm import Session

from monitor.config import ModelConfig
from monitor.sources.labels import id_strings
from monitor.store.labels import LabelRow
from monitor.store.repository import SampleRow, Store


def purge_labels(store: Store, models: Sequence[ModelConfig], now: float, kept: float, batch: int,
                 dry_run: bool) -> int:
    """Delete (or count) every label no reader needs any more; how many."""
    config = {m.name: m for m in models}
    with store.tx() as s:
        names = list(s.scalars(select(LabelRow.model).distinct()))
    return sum(_purge_model(store, config.get(name), name, now, kept, batch, dry_run) for name in names)


def _purge_model(store: Store, m: ModelConfig | None, model: str, now: float, kept: float, batch: int,
                 dry_run: bool) -> int:
    perf = m.performance if m is not None else None
    old = and_(LabelRow.model == model, LabelRow.ts < now - max(kept, perf.horizon if perf else 0.0))
    period = perf.reference.period() if perf is not None else None
    reference: set[str] = set()
    if perf is not None and period is not None:
        # A label true before the reference began is never read by its refit: only later ones may be its.
        if m is not None and m.samples is not None:  # its predictions may be in files: keep all it may read
            old = and_(old, LabelRow.ts < period[0])
        else:
            reference = _reference_ids(store, model, perf.id_column, period, old)
    total, after = 0, ""
    while True:  # keyset pages on the primary key (model, prediction_id)
        with store.tx() as s:
            page = list(s.scalars(select(LabelRow.prediction_id).where(old, LabelRow.prediction_id > after)
                                  .order_by(LabelRow.prediction_id).limit(batch)))
            gone = [pid for pid in page if pid not in reference]
            if gone and not dry_run:  # `old` again: a correction posted meanwhile is new and stays
                s.execute(delete(LabelRow).where(old, LabelRow.prediction_id.in_(gone)))
        total += len(gone)
        if len(page) < batch:
            return total
        after = page[-1]


def _reference_ids(store: Store, model: str, id_column: str, period: tuple[float, float],
                   old: ColumnElement[bool]) -> set[str]:
    """The ids of the reference period's stored predictions, written as the performance stage
    joins them (monitor/sources/labels.id_strings); read only when an old label may be one."""
    with store.tx() as s:
        if s.scalar(select(LabelRow.prediction_id).where(old, LabelRow.ts >= period[0]).limit(1)) is None:
            return set()
        return _ids(s, model, id_column, period)


def _ids(s: Session, model: str, id_column: str, period: tuple[float, float]) -> set[str]:
    values = s.scalars(select(SampleRow.record[id_column]).where(
        SampleRow.model == model, SampleRow.ts >= period[0], SampleRow.ts <= period[1]))
    col = pd.Series([v for v in values if v is not None], dtype=object)
    return set(id_strings(col)) if len(col) else set()
