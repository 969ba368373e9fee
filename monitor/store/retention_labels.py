"""The purge of delayed labels (`labels`), which follow the samples' retention.

A label is read twice: by the horizon's windows (labels true in the last `horizon`) and by
the reference refit (every label true since the reference period began, joined to the
reference's predictions). A backfill posts the reference's labels with the day it ran as
their time, so purging labels by their own time alone emptied a backfilled reference two
weeks later and the model's performance went blind. A label older than both the samples'
retention and the horizon therefore stays while its prediction is one of the reference
period's kept predictions; the rest go, `batch` rows a transaction.

The reference's ids never come into the process: a reference of millions of predictions
took hundreds of MB to hold as a set. They are written, as text the way the performance
stage joins them (monitor/sources/labels.id_strings), into a temporary table on one
connection, and each batch of labels is deleted with NOT EXISTS against it.
"""
from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    and_,
    case,
    cast,
    delete,
    exists,
    func,
    insert,
    literal,
    not_,
    select,
)

from monitor.config import ModelConfig
from monitor.store.labels import LabelRow, LabelSendRow
from monitor.store.repository import SampleRow, Store

_INT64 = 2**63  # id_strings writes a whole float below this as an integer


def purge_labels(store: Store, models: Sequence[ModelConfig], now: float, kept: float, batch: int,
                 dry_run: bool) -> int:
    """Delete (or count) every label no reader needs any more; how many."""
    config = {m.name: m for m in models}
    with store.tx() as s:
        names = list(s.scalars(select(LabelRow.model).distinct()))
    n = sum(_purge_model(store, config.get(name), name, now, kept, batch, dry_run) for name in names)
    if not dry_run:
        _forget_first_arrivals(store, config, now, kept)
    return n


def _forget_first_arrivals(store: Store, config: dict[str, ModelConfig], now: float, kept: float) -> None:
    """The first arrivals of future-dated labels (`label_sends`) as old as the labels purged:
    a retry later than that is long past any correction. Few rows: one statement a model."""
    with store.tx() as s:
        for name in list(s.scalars(select(LabelSendRow.model).distinct())):
            m = config.get(name)
            horizon = m.performance.horizon if m is not None and m.performance is not None else 0.0
            s.execute(delete(LabelSendRow).where(LabelSendRow.model == name,
                                                 LabelSendRow.first_seen < now - max(kept, horizon)))


def _purge_model(store: Store, m: ModelConfig | None, model: str, now: float, kept: float, batch: int,
                 dry_run: bool) -> int:
    perf = m.performance if m is not None else None
    old = and_(LabelRow.model == model, LabelRow.ts < now - max(kept, perf.horizon if perf else 0.0))
    period = perf.reference.period() if perf is not None else None
    with store.engine.connect() as conn:
        if perf is None or period is None:
            return _pages(conn, old, None, batch, dry_run)
        # A label true before the reference began is never read by its refit: only later ones may be its.
        if m is not None and m.samples is not None:  # its predictions may be in files: keep all it may read
            return _pages(conn, and_(old, LabelRow.ts < period[0]), None, batch, dry_run)
        with conn.begin():
            maybe = conn.scalar(select(LabelRow.prediction_id).where(old, LabelRow.ts >= period[0]).limit(1))
        if maybe is None:
            return _pages(conn, old, None, batch, dry_run)
        ref = _reference_table(conn, model, perf.id_column, period)
        try:
            # Kept: true since the reference began and one of its predictions.
            keep = and_(LabelRow.ts >= period[0], exists().where(ref.c.id == LabelRow.prediction_id))
            return _pages(conn, old, keep, batch, dry_run)
        finally:
            with conn.begin():
                ref.drop(conn)


def _pages(conn: Connection, old: ColumnElement[bool], keep: ColumnElement[bool] | None, batch: int,
           dry_run: bool) -> int:
    """Delete (count) the `old` labels not `keep`, in keyset pages on the primary key
    (model, prediction_id), one transaction each."""
    gone = and_(old, not_(keep)) if keep is not None else old
    total, after = 0, ""
    while True:
        with conn.begin():
            page = list(conn.scalars(select(LabelRow.prediction_id).where(old, LabelRow.prediction_id > after)
                                     .order_by(LabelRow.prediction_id).limit(batch)))
            if page:  # `old` again: a correction posted meanwhile is new and stays
                # The page as a range of the primary key: an IN list of it made SQLite walk
                # every old label of the model (the ts index) once per page.
                these = and_(gone, LabelRow.prediction_id > after, LabelRow.prediction_id <= page[-1])
                if dry_run:
                    total += int(conn.scalar(select(func.count()).select_from(LabelRow).where(these)) or 0)
                else:
                    total += int(conn.execute(delete(LabelRow).where(these)).rowcount or 0)
        if len(page) < batch:
            return total
        after = page[-1]


def _reference_table(conn: Connection, model: str, id_column: str, period: tuple[float, float]) -> Table:
    """A temporary table of the reference period's prediction ids, as text, filled in the
    database (one INSERT ... SELECT) and indexed after (faster than keeping a key while
    filling; a duplicate or a NULL, a sample without an id, matches the same or nothing)."""
    ref = Table("vigil_purge_reference_ids", MetaData(), Column("id", Text), prefixes=["TEMPORARY"])
    text = _id_text(conn.dialect.name, id_column)
    with conn.begin():
        ref.drop(conn, checkfirst=True)  # left by a purge that died on this pooled connection
        ref.create(conn)
        conn.execute(insert(ref).from_select(["id"], select(text).where(
            SampleRow.model == model, SampleRow.ts >= period[0], SampleRow.ts <= period[1])))
        Index("vigil_purge_reference_ids_id", ref.c.id).create(conn)
    return ref


def _id_text(dialect: str, id_column: str) -> ColumnElement[Any]:
    """A sample's `id_column` as monitor/sources/labels.id_strings writes it: a string as it
    is, a whole number below 2**63 as an integer ("123" for 123.0), another number as
    Python wrote it (the JSON text: samples are stored by json.dumps), true/false as
    "True"/"False"; None for a missing id."""
    if dialect == "postgresql":
        raw = SampleRow.record[id_column].as_string()  # json (not jsonb): a number's text as written
        kind = func.json_typeof(SampleRow.record[id_column])
        num = cast(raw, Numeric)
        return case(
            (kind == "string", raw),
            (and_(kind == "number", raw.regexp_match("^-?[0-9]+$")), raw),
            (and_(kind == "number", num == func.trunc(num), func.abs(num) < Decimal(_INT64)),
             cast(func.trunc(num), Text)),
            (kind == "number", raw),
            (kind == "boolean", case((raw == "true", "True"), else_="False")),
            else_=None)
    path = literal('$."' + id_column + '"', String)
    value = func.json_extract(SampleRow.record, path)
    raw = SampleRow.record.op("->", return_type=Text)(path)  # SQLite: a number's text as written
    whole = and_(value == cast(value, Integer), func.abs(value) < float(_INT64))
    # CASE json_type(...) WHEN ...: the type is read once a row, not once a branch.
    return case({"text": value, "integer": raw, "real": case((whole, cast(cast(value, Integer), Text)), else_=raw),
                 "true": "True", "false": "False"}, value=func.json_type(SampleRow.record, path), else_=None)
