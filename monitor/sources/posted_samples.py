"""Rows posted to `POST /v1/samples` (kept in the store) as the frame the sample files give."""
from __future__ import annotations

from typing import Any

import pandas as pd


def records_frame(records: list[tuple[float, dict[str, Any]]]) -> pd.DataFrame:
    """Rows ingested through the API -> the same frame shape as the files give."""
    if not records:
        return pd.DataFrame()
    rows = [r for _, r in records]
    try:
        df = pd.DataFrame(rows)
    except OverflowError:
        df = _frame_by_column(rows)
    df["_ts"] = [t for t, _ in records]
    return df


def _frame_by_column(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows holding an integer beyond the float range (stored before the API refused them):
    pandas cannot infer that column's type, so it stays as objects for the detectors to
    count as non-finite, and every other column gets its type as usual."""
    df = pd.DataFrame(rows, dtype=object)
    for col in df.columns:
        try:
            df[col] = df[col].infer_objects()
        except OverflowError:
            continue
    return df
