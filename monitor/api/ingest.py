"""Validation of feature samples posted to `POST /v1/samples`.

A request is accepted whole or rejected whole, with every bad field named, so a
client can fix and resend it without guessing what was kept.

Every value is a scalar, and every number finite and within +-2^53: there a float still
holds each integer exactly, squares stay finite, and no client can hand the drift
detector a number it cannot convert (a 400-digit integer once made a whole cycle's drift
`no_data`). The timestamp is `timestamp` (RFC 3339, or epoch seconds, ms or ns) between
1970 and 9999.

Timestamps are parsed in one vectorised pass (a request may hold 100,000 records;
parsing them one by one took about a second per thousand).
"""
from __future__ import annotations

import difflib
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from monitor.config import ModelConfig
from monitor.sources.posted_samples import MAX_OTHER_COLUMNS
from monitor.sources.samples import epoch_seconds
from monitor.sources.text_times import NAIVE_TIME

MAX_ERRORS = 20
TIMESTAMP = "timestamp"
MAX_ABS_NUMBER = 2**53
MAX_EPOCH_S = 253402300800.0  # 10000-01-01T00:00:00Z
MAX_AHEAD_S = 366 * 86400.0  # the latest a sample may be dated after the server's clock
_EPOCH = pd.Timestamp(0, tz="UTC")
_SCALARS = (str, bool, type(None))


class InvalidRecords(ValueError):
    """Some records are invalid; `fields` holds {"field": "records[i].name", "message": ...}."""

    def __init__(self, fields: list[dict[str, str]]) -> None:
        self.fields = fields
        summary = "; ".join(f"{e['field']}: {e['message']}" for e in fields[:5])
        super().__init__(f"{len(fields)} invalid field(s), nothing stored: {summary}")


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _as_float(v: int | float) -> float:
    """A float, or NaN for an integer beyond the float range (float() would raise)."""
    try:
        return float(v)
    except OverflowError:
        return math.nan


def _shown(v: Any) -> str:
    """A value as an error message quotes it: an integer of 400 digits is not quoted whole."""
    if isinstance(v, int) and not isinstance(v, bool) and v.bit_length() > 64:
        return f"an integer of about {int(v.bit_length() * math.log10(2)) + 1} digits"
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def value_problem(v: Any, numeric: bool) -> str | None:
    """What is wrong with one field's value, or None. `numeric`: the field is a numeric
    feature (or the prediction), so text and booleans are wrong too."""
    if isinstance(v, _SCALARS):
        if v is None or not numeric:
            return None
        return f"expected a number or null, got {_shown(v)}"
    if isinstance(v, (int, float)):
        if -MAX_ABS_NUMBER <= v <= MAX_ABS_NUMBER:  # False for NaN
            return None
        return f"expected a finite number within +-{MAX_ABS_NUMBER} (2^53) or null, got {_shown(v)}"
    return f"expected {'a number' if numeric else 'a string, number, boolean'} or null, got {_shown(v)}"


def parse_timestamps(values: list[Any]) -> np.ndarray:
    """RFC 3339 text (naive = UTC) or epoch seconds (ms and ns recognised by size) -> epoch
    seconds; NaN where a value is missing, blank, of another type or unreadable."""
    out = np.full(len(values), np.nan)
    num_idx = [i for i, v in enumerate(values) if _is_number(v)]
    if num_idx:
        v = np.array([_as_float(values[i]) for i in num_idx])
        out[num_idx] = epoch_seconds(v, np.abs(v))
    str_idx = [i for i, v in enumerate(values) if isinstance(v, str) and v.strip()]
    if str_idx:
        text = pd.Series([values[i].strip() for i in str_idx])
        # A time without a zone is UTC: said explicitly, or pandas' ISO parse of a batch
        # gives it the offset of a zoned record before it.
        text = text.str.replace(NAIVE_TIME, r"\1Z", regex=True)
        parsed = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")
        retry = parsed.isna().to_numpy()
        if retry.any():  # rarer spellings ("Nov 20 2026 08:00"), then epoch numbers written as text
            parsed[retry] = pd.to_datetime(text[retry], utc=True, errors="coerce", format="mixed")
        seconds = (parsed - _EPOCH).dt.total_seconds().to_numpy(dtype=float)
        still = np.isnan(seconds)
        if still.any():  # epoch numbers written as text: told apart by size like JSON numbers
            nums = pd.to_numeric(text[still], errors="coerce").to_numpy(dtype=float)
            seconds[still] = epoch_seconds(nums, np.abs(nums))
        out[str_idx] = seconds
    return out


def numeric_fields(m: ModelConfig) -> tuple[set[str], dict[str, Callable[[float], str | None]]]:
    """The fields that must hold numbers (numeric features, the prediction, and the columns
    performance reads: a text prediction there was dropped unseen), and the checks of the
    numbers performance reads: a probability in [0, 1], a classifier's prediction a class
    (a probability logged as the prediction read as class 0, every row)."""
    numeric = {f.name for f in m.features if f.type == "numeric"}
    if m.prediction_column and m.prediction_column not in {f.name for f in m.features}:
        numeric.add(m.prediction_column)  # declared a feature, it keeps that type (drift judges it so)
    perf = m.performance
    if perf is None:
        return numeric, {}
    checks: dict[str, Callable[[float], str | None]] = {}
    predicted = perf.prediction_column or m.prediction_column
    if perf.task == "classification" and predicted:
        classes = (0.0, 1.0, perf.positive_class)
        checks[predicted] = lambda v: None if v in classes else (
            f"expected a class: 0 or 1 (or {perf.positive_class:g}, the positive class) or null, got {_shown(v)}")
    if perf.probability_column:
        checks[perf.probability_column] = lambda v: None if 0 <= v <= 1 else (
            f"expected a probability between 0 and 1 or null, got {_shown(v)}")
    numeric.update(checks)
    return numeric, checks


def validate_records(m: ModelConfig, records: list[dict[str, Any]],
                     now: float | None = None) -> list[tuple[float, dict[str, Any]]]:
    """(epoch seconds, record without its timestamp) per record, or InvalidRecords naming
    each bad field as records[i].<name>. `now` (the wall clock): no record may be dated
    more than MAX_AHEAD_S after it."""
    wide = too_many_columns(m, records)
    if wide:
        raise InvalidRecords([wide])
    numeric, checks = numeric_fields(m)
    ts = parse_timestamps([rec.get(TIMESTAMP) for rec in records])
    latest = MAX_EPOCH_S if now is None else min(MAX_EPOCH_S, now + MAX_AHEAD_S)
    errors: list[dict[str, str]] = []
    out: list[tuple[float, dict[str, Any]]] = []
    for i, rec in enumerate(records):
        problem = _timestamp_problem(rec, float(ts[i]), latest)
        if problem:
            errors.append({"field": f"records[{i}].{TIMESTAMP}", "message": problem})
        for name, v in rec.items():
            kind = type(v)
            if (kind is float or kind is int) and -MAX_ABS_NUMBER <= v <= MAX_ABS_NUMBER and name not in checks:
                continue  # the common case, decided without a call (100,000 records x their fields)
            problem = None if name == TIMESTAMP else value_problem(v, name in numeric)
            if problem is None and v is not None and name in checks:
                problem = checks[name](v)
            if problem:
                errors.append({"field": f"records[{i}].{name}", "message": problem})
        if len(errors) >= MAX_ERRORS:
            break
        if not errors:
            out.append((float(ts[i]), {k: v for k, v in rec.items() if k != TIMESTAMP}))
    errors += misspelt_columns(m, records) if records and not errors else []
    if errors:
        raise InvalidRecords(errors[:MAX_ERRORS])
    return out


def too_many_columns(m: ModelConfig, records: list[dict[str, Any]]) -> dict[str, str] | None:
    """A batch holding more columns besides the model's own than a cycle reads of a window
    (MAX_OTHER_COLUMNS): stored, the rest would be left out without the client knowing."""
    own = {f.name for f in m.features} | {TIMESTAMP} | _other_columns(m)
    others = len(set[str]().union(*records) - own - {m.prediction_column})
    if others <= MAX_OTHER_COLUMNS:
        return None
    return {"field": "records", "message": (
        f"{others} columns besides the model's own; expected at most {MAX_OTHER_COLUMNS} (the columns a cycle reads "
        "besides the model's own: an id per request belongs in one column's values, not in its name)")}


def misspelt_columns(m: ModelConfig, records: list[dict[str, Any]]) -> list[dict[str, str]]:
    """A column close to a configured feature the records lack (`user_agee` for `user_age`):
    stored as sent, the feature would read as missing from production for as long as the
    client keeps the typo. Other extra columns (ids, versions) are fine. A client's records
    share their columns, so the first and the last stand for the batch."""
    sent = set(records[0]) | set(records[-1])
    wanted = [f.name for f in m.features] + ([m.prediction_column] if m.prediction_column else [])
    missing = [name for name in wanted if name not in sent]
    unknown = sorted(sent - set(wanted) - {TIMESTAMP} - _other_columns(m))
    out = []
    for name in missing:
        close = difflib.get_close_matches(name, unknown, n=1, cutoff=0.8)
        if close:
            where = 0 if close[0] in records[0] else len(records) - 1
            out.append({"field": f"records[{where}].{close[0]}",
                        "message": f"unknown column; did you mean {name!r}? (a configured feature no record has)"})
    return out


def _other_columns(m: ModelConfig) -> set[str]:
    """Columns the configuration reads besides the features: never an "unknown column"
    (performance's `prediction_id` is close to a `prediction` a client left out as null)."""
    perf, canary = m.performance, m.canary
    names = {m.samples.timestamp_column if m.samples else None, canary.version_column if canary else None}
    if perf is not None:
        names |= {perf.id_column, perf.prediction_column, perf.probability_column, perf.version_column}
    return {n for n in names if n}


def _timestamp_problem(rec: dict[str, Any], seconds: float, latest: float) -> str | None:
    if TIMESTAMP not in rec:
        return "required timestamp is missing"
    if not math.isfinite(seconds):
        return f"expected RFC3339 or epoch seconds, got {_shown(rec[TIMESTAMP])}"
    if not 0 <= seconds < MAX_EPOCH_S:
        return f"expected a time between 1970 and 9999, got {_shown(rec[TIMESTAMP])}"
    if seconds > latest:
        # A client clock years off (or a date typed wrong): no window reads such a row until
        # then, and retention, which purges what is old, never would.
        return f"expected a time at most a year from now, got {_shown(rec[TIMESTAMP])}"
    return None
