"""Times written as text in sample and label files, read as `POST /v1/samples` reads them.

pandas guesses one format from a column's first value and refuses the file at the first
value spelt otherwise; RFC 3339 allows several spellings in one column (Python's
`datetime.isoformat()` leaves the fraction out when it is zero, so one row in a million
has none). Such a column is read as ISO 8601 value by value, a time without a zone as UTC.
"""
from __future__ import annotations

import pandas as pd

# A time of day ending the text with no zone after it (monitor/api/ingest.py reads it too).
NAIVE_TIME = r"((?<![\d+\-])\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?)$"


def parse_datetimes(col: pd.Series) -> pd.Series:
    """UTC datetimes (NaT where missing); ValueError or TypeError for a value no reading takes."""
    try:
        return pd.to_datetime(col, utc=True)  # one spelling for the whole column: the usual, fast case
    except (ValueError, TypeError):
        if pd.api.types.infer_dtype(col, skipna=True) != "string":
            raise
    text = col.str.strip().str.replace(NAIVE_TIME, r"\1Z", regex=True)
    parsed = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")
    rest = parsed.isna() & text.notna() & (text != "")
    if rest.any():  # rarer spellings ("Nov 20 2026 08:00"): an unreadable one still raises
        parsed[rest] = pd.to_datetime(text[rest], utc=True, format="mixed")
    return parsed
