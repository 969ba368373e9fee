"""Delayed labels from files: parquet/CSV under a configured directory or glob, one row a
label (the prediction's id, the label, when it became known). Files are read once and
re-read when they change (the sample files' cache), so a label file dropped in is seen
by the next cycle.
"""
from __future__ import annotations

import os
import re

import numpy as np
import pandas as pd
import pyarrow as pa

from monitor.sources.samples import SampleFileError, SampleFiles
from monitor.sources.table_files import require_columns

# The frame every label source gives (detectors.performance.windows' column names).
ID, LABEL, LABEL_TS = "prediction_id", "label", "label_ts"


EXPECTED = "expected finite numeric labels (classes as 0/1)"


def numeric_labels(col: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Numbers (booleans as 0/1, a missing label NaN) and which present values are none:
    text, or inf (no metric takes it); those are NaN too."""
    if pd.api.types.is_bool_dtype(col):
        return col.to_numpy(dtype=float), np.zeros(len(col), dtype=bool)
    values = pd.to_numeric(col, errors="coerce").to_numpy(dtype=float, copy=True)  # not a view of `col`
    bad = ~np.isfinite(values) & col.notna().to_numpy()
    values[bad] = np.nan
    return values, bad


def label_values(col: pd.Series, *, where: str, notes: list[str] | None = None) -> np.ndarray:
    """Numbers (booleans as 0/1); a value that is none is NaN (no label), counted in `notes`
    naming `where` (its column) and an example. A SampleFileError naming the column when not
    one value is a number (the wrong column, not a bad row), or when there is no `notes` to
    say it in."""
    values, bad = numeric_labels(col)
    if bad.any():
        why = f"{where}: {EXPECTED}, got {col[bad].iloc[0]!r}"
        if notes is None or bad.sum() == np.count_nonzero(col.notna().to_numpy()):
            raise SampleFileError(why)
        notes.append(f"{int(bad.sum()):,} of {len(col):,} labels left out ({why})")
    return values


def id_strings(col: pd.Series) -> pd.Series:
    """Prediction ids as text, the same whichever way they were written: 123, 123.0 (a CSV
    column with a gap) and "123" are one id."""
    if pd.api.types.is_float_dtype(col):
        v = col.to_numpy(dtype=float)
    elif col.dtype == object and pd.api.types.infer_dtype(col, skipna=True) not in ("string", "empty"):
        # floats among other ids (a window over files whose id columns differ in type)
        v = np.array([x if isinstance(x, float) else np.nan for x in col.to_numpy()], dtype=float)
    else:
        return col.astype(str)
    # Filled by position: `where` with the whole ids as a Series realigned them with the
    # gaps as NaN, so a column with a gap (the very case) came out as "123.0" again.
    whole = np.isfinite(v) & (v == np.floor(v)) & (np.abs(v) < 2.0**63)
    out = col.astype(str).to_numpy(dtype=object)
    out[whole] = v[whole].astype(np.int64).astype(str)
    return pd.Series(out, index=col.index)


def empty_labels() -> pd.DataFrame:
    return pd.DataFrame({ID: pd.Series(dtype=str), LABEL: pd.Series(dtype=float), LABEL_TS: pd.Series(dtype=float)})


class LabelFiles:
    def __init__(self, pattern: str, id_column: str, label_column: str, timestamp_column: str) -> None:
        self._files = SampleFiles(pattern, timestamp_column)
        self.id_column, self.label_column = id_column, label_column
        self._textual: list[tuple[str, pd.DataFrame | pa.Table]] = []  # this window's files of non-numeric labels

    def _check(self, path: str, data: pd.DataFrame | pa.Table) -> None:
        """The file has both columns, or a SampleFileError naming it: a file without the label
        column, merged with others, had its labels read as missing and dropped unsaid. A file
        whose labels are not all numbers is kept aside, to be named if they fail."""
        names = data.column_names if isinstance(data, pa.Table) else list(data.columns)
        require_columns(path, names, (self.id_column, self.label_column))
        col = data.column(self.label_column) if isinstance(data, pa.Table) else data[self.label_column]
        typ = col.type if isinstance(col, pa.ChunkedArray) else None
        numeric = (pd.api.types.is_numeric_dtype(col) if typ is None
                   else pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_boolean(typ))
        if not numeric:
            self._textual.append((path, data))

    def _bad_files(self, start: float, end: float) -> str:
        """The files whose window rows hold a label that is no number: the directory alone left
        the operator to search every daily file. A file whose label column holds no number at
        all (the wrong column, "churned"/"stayed") is a SampleFileError naming it and the column."""
        named = []
        for path, data in self._textual:
            frame = data if isinstance(data, pd.DataFrame) else data.select([self.label_column, "_ts"]).to_pandas()
            rows = frame[(frame["_ts"] >= start) & (frame["_ts"] <= end)]
            if not numeric_labels(rows[self.label_column])[1].any():
                continue
            named.append(str(path))
            values, _ = numeric_labels(frame[self.label_column])
            if np.isnan(values).all():
                label_values(frame[self.label_column], where=f"label file {path} column {self.label_column!r}")
        if not named:
            return f"label files {self._files.pattern}"
        more = f" and {len(named) - 3} more" if len(named) > 3 else ""
        return f"label file{'s' if len(named) > 1 else ''} {', '.join(named[:3])}{more}"

    def window(self, start: float, end: float, notes: list[str] | None = None, purpose: str = "") -> pd.DataFrame:
        """Labels that became known in [start, end], as (prediction_id, label, label_ts), oldest
        first; a row without a label is no label. A label that is no number is left out and
        counted in `notes` (its files named): one "unknown" in a daily file raised for the
        whole window, and the stage was blind while it stayed in the horizon. None a number
        is a SampleFileError naming the files and the column. `purpose`: see SampleFiles.window."""
        root = _root(self._files.pattern)
        if root and not os.path.exists(root):  # a typo read as "no label file yet", every window unlabelled
            raise SampleFileError(f"label files {self._files.pattern}: no such file or directory {root!r} "
                                  "(performance.labels.path)")
        self._textual = []
        df = self._files.window(start, end, purpose, check=self._check)
        if len(df) == 0:
            return empty_labels()
        where = f"label files {self._files.pattern}"
        for col in (self.id_column, self.label_column):
            if col not in df.columns:
                raise SampleFileError(f"{where}: column {col!r} not found (columns: {', '.join(map(str, df.columns))})")
        labels, bad = numeric_labels(df[self.label_column])
        if bad.any():
            label_values(df[self.label_column], notes=notes,
                         where=f"{self._bad_files(start, end)} column {self.label_column!r}")
        out = pd.DataFrame({ID: id_strings(df[self.id_column]), LABEL: labels,
                            LABEL_TS: df["_ts"].to_numpy(dtype=float)})
        out = out[out[LABEL].notna() & df[self.id_column].notna().to_numpy()]
        # Oldest known first, so a prediction labelled twice (a correction file) keeps the label
        # known last (join_labels keeps the last row of an id): the files come in listing order,
        # and a correction whose file name sorted first was silently undone by the original.
        return out.sort_values(LABEL_TS, kind="stable").reset_index(drop=True)


def _root(pattern: str) -> str:
    """The file or directory a label path names, or the directory its glob starts in."""
    head = re.split(r"[*?\[]", pattern, maxsplit=1)[0]
    return pattern if head == pattern else os.path.dirname(head)
