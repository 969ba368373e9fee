"""Rows posted to `POST /v1/samples` (kept in the store) as the frame the sample files give."""
from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Any

import pandas as pd

log = logging.getLogger("vigil.samples")
# Columns besides the model's own (`keep`) that a window's posted rows are read with, the first
# seen first. Other columns are kept as posted, but a serving side that posts a key per request
# (`{"req_8f3a...": 1}`) made one frame of 500,000 columns from a 7 MB batch: 108 s and 4 GB
# for every cycle of the model while the rows stayed in the window.
MAX_OTHER_COLUMNS = 1_000


def records_frame(records: list[tuple[float, dict[str, Any]]], keep: Collection[str] = ()) -> pd.DataFrame:
    """Rows ingested through the API -> the same frame shape as the files give: every column
    of theirs when they have at most MAX_OTHER_COLUMNS besides `keep` (the columns the model
    reads), else those of `keep` and the first MAX_OTHER_COLUMNS others (logged)."""
    if not records:
        return pd.DataFrame()
    rows = [r for _, r in records]
    columns = _columns(rows, keep)
    try:
        df = pd.DataFrame(rows, columns=columns)
    except OverflowError:
        df = _frame_by_column(rows, columns)
    df["_ts"] = [t for t, _ in records]
    return df


def _columns(rows: list[dict[str, Any]], keep: Collection[str]) -> list[str] | None:
    """The columns to read (None: all of them)."""
    seen = dict.fromkeys(k for r in rows for k in r)
    own = [c for c in seen if c in keep]
    if len(seen) - len(own) <= MAX_OTHER_COLUMNS:
        return None
    others = [c for c in seen if c not in keep][:MAX_OTHER_COLUMNS]
    log.warning("posted samples hold %d columns besides the model's own %d: the first %d of them read, "
                "the rest left out (a key per request posted as a column?)", len(seen) - len(own), len(own),
                MAX_OTHER_COLUMNS, extra={"rows": len(rows)})
    return own + others


def _frame_by_column(rows: list[dict[str, Any]], columns: list[str] | None) -> pd.DataFrame:
    """Rows holding an integer beyond the float range (stored before the API refused them):
    pandas cannot infer that column's type, so it stays as objects for the detectors to
    count as non-finite, and every other column gets its type as usual."""
    df = pd.DataFrame(rows, columns=columns, dtype=object)
    for col in df.columns:
        try:
            df[col] = df[col].infer_objects()
        except OverflowError:
            continue
    return df
