"""Validation of feature samples posted to `POST /v1/samples`.

A request is accepted whole or rejected whole, with every bad field named, so a
client can fix and resend it without guessing what was kept.

Timestamps are parsed in one vectorised pass (a request may hold 100,000 records;
parsing them one by one took about a second per thousand).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from monitor.config import ModelConfig, SamplesConfig

MAX_ERRORS = 20
_EPOCH = pd.Timestamp(0, tz="UTC")


class InvalidRecords(ValueError):
    """Some records are invalid; `fields` holds {"field": "records[i].name", "message": ...}."""

    def __init__(self, fields: list[dict[str, str]]) -> None:
        self.fields = fields
        summary = "; ".join(f"{e['field']}: {e['message']}" for e in fields[:5])
        super().__init__(f"{len(fields)} invalid field(s), nothing stored: {summary}")


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def parse_timestamps(values: list[Any]) -> np.ndarray:
    """RFC 3339 text (naive = UTC) or epoch seconds (ms and ns recognised by size) -> epoch
    seconds; NaN where a value is missing, blank, of another type or unreadable."""
    out = np.full(len(values), np.nan)
    num_idx = [i for i, v in enumerate(values) if _is_number(v)]
    if num_idx:
        v = np.array([float(values[i]) for i in num_idx])
        with np.errstate(invalid="ignore"):
            # Epoch milliseconds/nanoseconds are common in exported data; seconds stay < 1e11 until 5138.
            v = np.where(np.abs(v) > 1e14, v / 1e9, np.where(np.abs(v) > 1e11, v / 1e3, v))
        out[num_idx] = v
    str_idx = [i for i, v in enumerate(values) if isinstance(v, str) and v.strip()]
    if str_idx:
        text = pd.Series([values[i].strip() for i in str_idx])
        parsed = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")
        retry = parsed.isna().to_numpy()
        if retry.any():  # rarer spellings ("Nov 20 2026 08:00"), then epoch seconds written as text
            parsed[retry] = pd.to_datetime(text[retry], utc=True, errors="coerce", format="mixed")
        seconds = (parsed - _EPOCH).dt.total_seconds().to_numpy(dtype=float)
        still = np.isnan(seconds)
        if still.any():
            seconds[still] = pd.to_numeric(text[still], errors="coerce").to_numpy(dtype=float)
        out[str_idx] = seconds
    return out


def validate_records(m: ModelConfig, records: list[dict[str, Any]], samples: SamplesConfig | None
                     ) -> list[tuple[float, dict[str, Any]]]:
    """(epoch seconds, record without its timestamp) per record, or InvalidRecords naming
    each bad field as records[i].<name>."""
    ts_col = samples.timestamp_column if samples else "timestamp"
    numeric = [f.name for f in m.features if f.type == "numeric"]
    if m.prediction_column and m.prediction_column not in numeric:
        numeric.append(m.prediction_column)
    ts = parse_timestamps([rec.get(ts_col) for rec in records])
    errors: list[dict[str, str]] = []
    out: list[tuple[float, dict[str, Any]]] = []
    for i, rec in enumerate(records):
        if ts_col not in rec:
            errors.append({"field": f"records[{i}].{ts_col}", "message": "required timestamp is missing"})
        elif not math.isfinite(ts[i]):
            errors.append({"field": f"records[{i}].{ts_col}",
                           "message": f"expected RFC3339 or epoch seconds, got {rec[ts_col]!r}"})
        for name in numeric:
            v = rec.get(name)
            if v is not None and not _is_number(v):
                errors.append({"field": f"records[{i}].{name}", "message": f"expected a number or null, got {v!r}"})
        if len(errors) >= MAX_ERRORS:
            break
        if not errors:
            out.append((float(ts[i]), {k: v for k, v in rec.items() if k != ts_col}))
    if errors:
        raise InvalidRecords(errors[:MAX_ERRORS])
    return out
