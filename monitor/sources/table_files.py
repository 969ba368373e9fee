"""Reading one samples or reference file (parquet or CSV) into a frame, its errors named."""
from __future__ import annotations

import math
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pandas._libs.parsers import STR_NA_VALUES  # pandas' own list of missing-value strings


class SampleFileError(ValueError):
    """A samples/reference file cannot be used; the message names the file and the column."""


def read_table(path: Path, text_columns: Collection[str] = (), times: str | None = None) -> pd.DataFrame:
    """The file as a frame. A CSV holds no types: pandas guesses them, and a zip code or an
    account code ("02139") became the number 2139, a new category next to the reference's
    "02139". `text_columns` (the features declared categorical) are read as written;
    `times`, the timestamp column, stays a number (epoch nanoseconds are 64-bit integers too)."""
    suffix = path.suffix.lower()
    if suffix not in (".parquet", ".pq", ".csv", ".txt"):
        raise SampleFileError(f"{path}: expected a .parquet or .csv file")
    try:  # half written or damaged (ArrowInvalid, ParserError): named, not an internal error
        if suffix in (".parquet", ".pq"):
            return wide_integers_as_text(pq.read_table(path), times).to_pandas()
        text = dict.fromkeys(text_columns, str)  # (a name the file lacks is ignored)
        na = _missing_values(path, text)
        df = _plain_numbers_as_numbers(pd.read_csv(path, dtype=text or None, **na), text)
        wide = _integers_past_float(df)
        return _plain_numbers_as_numbers(pd.read_csv(path, dtype=text | dict.fromkeys(wide, str), **na), text) \
            if wide else df
    except (ValueError, pa.ArrowException) as e:
        raise SampleFileError(f"{path}: cannot be read ({type(e).__name__}: {e})") from None


def _missing_values(path: Path, text: Collection[str]) -> dict[str, Any]:
    """`read_csv`'s missing values: pandas' own ("NA", "None", "null", ...) in every column
    but the categorical ones, where only an empty cell is missing. "NA" is Namibia's country
    code, and a category may be called "None": read as missing, they left the drift test."""
    if not text:
        return {}
    columns = pd.read_csv(path, nrows=0).columns
    return {"keep_default_na": False,
            "na_values": {c: [""] if c in text else sorted(STR_NA_VALUES) for c in columns}}


def _plain_numbers_as_numbers(df: pd.DataFrame, text: Collection[str]) -> pd.DataFrame:
    """A categorical column whose every value is a number as a number is written ("2139",
    "1.0": what pandas writes) read as numbers, as before: it then still matches a parquet
    reference's 1.0. Text stays where a number would lose something: "02139", "1.10"."""
    plain = [name for name in text if name in df.columns and _all_plain(df[name])]
    df = df.assign(**{name: pd.to_numeric(df[name]) for name in plain}) if plain else df
    # Likewise booleans as pandas reads them (`true`, as Spark writes them, `True`, `TRUE`): kept
    # as text, `true` was a category next to a parquet file's True and every row looked new.
    flags = [name for name in text if name in df.columns and name not in plain
             and df[name].notna().any() and set(df[name].dropna()) <= _BOOLEAN_TEXT.keys()]
    return df.assign(**{name: df[name].map(_BOOLEAN_TEXT) for name in flags}) if flags else df


_BOOLEAN_TEXT = {"True": True, "TRUE": True, "true": True, "False": False, "FALSE": False, "false": False}


def _all_plain(col: pd.Series) -> bool:
    for t in set(col.dropna()):
        try:
            f = float(t)
        except ValueError:
            return False
        if not (math.isfinite(f) and (t == repr(f) or (f.is_integer() and t == str(int(f))))):
            return False
    return True


def _integers_past_float(df: pd.DataFrame) -> list[str]:
    """Columns pandas made float (a gap: an empty cell) that hold integers too long for a
    float's 53 bits. Read so, 64-bit ids (Snowflake-style, ~1.8e18) collapsed into one another
    and labels joined the wrong predictions; read as text, every digit is kept."""
    out = []
    for name in df.columns:
        col = df[name]
        if col.dtype.kind == "f" and col.isna().any():
            v = col.to_numpy()
            big = np.abs(v[np.isfinite(v)])
            if len(big) and big.max() >= 2.0 ** 53 and np.all(big == np.floor(big)):
                out.append(str(name))
    return out


def wide_integers_as_text(table: pa.Table, times: str | None = None) -> pa.Table:
    """Integer columns with a gap (a null) holding integers too long for a float's 53 bits, as
    text: pandas makes such a column float, and 64-bit ids (Snowflake-style) written by Spark
    or pyarrow collapsed into one another, their labels joined to the wrong predictions or
    none (`_integers_past_float` is the same rule for a CSV file). `times` is left alone."""
    for i, field in enumerate(table.schema):
        col = table.column(i)
        if field.name == times or not pa.types.is_integer(field.type) or not 0 < col.null_count < len(col):
            continue
        bounds = pc.min_max(col)
        if max(abs(int(bounds["min"].as_py())), abs(int(bounds["max"].as_py()))) >= 2**53:
            table = table.set_column(i, field.name, pc.cast(col, pa.string()))
    return table


# Called with a file's path and content (parsed, or as the spool maps it) by SampleFiles.window.
FileCheck = Callable[[str, "pd.DataFrame | pa.Table"], None]


def require_columns(path: str, names: Collection[str], required: Collection[str]) -> None:
    """SampleFileError naming the file and the first of `required` it lacks: merged with files
    that have it, its rows read as missing values and were dropped unsaid."""
    missing = [c for c in required if c not in names]
    if missing:
        shown = ", ".join(str(n) for n in names if n != "_ts")
        raise SampleFileError(f"{path}: column {missing[0]!r} not found (columns: {shown})")


def require_times(ts: np.ndarray, path: str, column: str) -> np.ndarray:
    """`ts`, unless no row of the file has a time: its rows, skipped one by one, went missing
    with a log line only (a writer that stopped filling the column)."""
    if len(ts) and bool(np.isnan(ts).all()):
        raise SampleFileError(f"{path} column {column!r}: no row has a time (all {len(ts):,} empty); "
                              "expected datetimes or epoch seconds")
    return ts
