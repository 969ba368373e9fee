"""Production feature samples and predictions: files under a directory/glob, plus rows
posted to `POST /v1/samples` and kept in the store. Training references are files too.
"""
from __future__ import annotations

import glob
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from monitor.sources.cache import BoundedCache

log = logging.getLogger("vigil.samples")


class SampleFileError(ValueError):
    """A samples/reference file cannot be used; the message names the file and the column."""


def _read_table(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return pd.read_parquet(path)
    if suffix in (".csv", ".txt"):
        return pd.read_csv(path)
    raise SampleFileError(f"{path}: expected a .parquet or .csv file")


def to_epoch_seconds(col: pd.Series, *, where: str) -> np.ndarray:
    """Datetimes (naive = UTC), RFC3339 strings or epoch numbers -> float epoch seconds."""
    if pd.api.types.is_numeric_dtype(col):
        v = col.to_numpy(dtype="float64")
        # Epoch milliseconds/nanoseconds are common in exported data; seconds are < 1e11 until year 5138.
        if len(v) and np.nanmax(np.abs(v)) > 1e14:
            return v / 1e9
        if len(v) and np.nanmax(np.abs(v)) > 1e11:
            return v / 1e3
        return v
    if pd.api.types.is_bool_dtype(col):
        raise SampleFileError(f"{where}: expected datetimes or epoch seconds, got booleans")
    try:
        dt = pd.to_datetime(col, utc=True)
    except (ValueError, TypeError) as e:
        raise SampleFileError(f"{where}: expected datetimes or epoch seconds ({e})") from None
    out = dt.astype("int64").to_numpy() / 1e9
    out[dt.isna().to_numpy()] = np.nan  # a missing time is missing, not 1677
    return out


SAMPLE_CACHE_BYTES = 512 * 2**20  # sample files kept in memory, all models together
_SHARED = BoundedCache(SAMPLE_CACHE_BYTES)


class SampleFiles:
    """Reads sample files, caching each by (path, mtime, size) so a cycle only re-reads new
    files. The cache is bounded (`cache`, shared by every model's files): a file no window
    overlaps any more is dropped, and beyond the budget files are read each cycle. Each
    file's time range is kept (small), so a file outside the window is never opened."""

    def __init__(self, pattern: str | Path, timestamp_column: str, cache: BoundedCache | None = None) -> None:
        self.pattern = str(pattern)
        self.timestamp_column = timestamp_column
        self._cache = cache if cache is not None else _SHARED
        self._ranges: dict[str, tuple[tuple[float, int], float, float]] = {}  # path -> (key, lo, hi)

    def _files(self) -> list[str]:
        p = self.pattern
        if os.path.isdir(p):
            return sorted(glob.glob(os.path.join(p, "*.parquet")) + glob.glob(os.path.join(p, "*.csv")))
        return sorted(glob.glob(p))

    def _range(self, path: str) -> tuple[tuple[float, int], float, float] | None:
        """The file's (key, first, last time) if it is unchanged since it was read."""
        st = os.stat(path)
        known = self._ranges.get(path)
        return known if known is not None and known[0] == (st.st_mtime, st.st_size) else None

    def _load(self, path: str) -> tuple[pd.DataFrame, float, float]:
        st = os.stat(path)
        key = (st.st_mtime, st.st_size)
        hit = self._cache.get((path, key))
        if hit is not None:
            return hit
        df = _read_table(Path(path))
        if self.timestamp_column not in df.columns:
            raise SampleFileError(
                f"{path}: timestamp column {self.timestamp_column!r} not found "
                f"(columns: {', '.join(map(str, df.columns[:20]))})"
            )
        ts = to_epoch_seconds(df[self.timestamp_column], where=f"{path} column {self.timestamp_column!r}")
        df = df.assign(_ts=ts)
        missing = int(np.isnan(ts).sum())
        if missing:
            log.warning("sample rows without a timestamp skipped", extra={"file": path, "rows": missing})
            df = df[~np.isnan(ts)]
        df = df.sort_values("_ts", kind="stable").reset_index(drop=True)
        lo, hi = (float(df["_ts"].iloc[0]), float(df["_ts"].iloc[-1])) if len(df) else (np.inf, -np.inf)
        self._ranges[path] = (key, lo, hi)
        self._cache.put((path, key), (df, lo, hi), int(df.memory_usage(deep=False).sum()))
        return df, lo, hi

    def window(self, start: float, end: float) -> pd.DataFrame:
        """Rows with start <= t <= end from every file overlapping the window."""
        parts = []
        for path in self._files():
            known = self._range(path)
            if known is not None and (known[2] < start or known[1] > end):
                self._cache.discard((path, known[0]))  # no window of this model needs it now
                continue
            df, lo, hi = self._load(path)
            if hi < start or lo > end:
                continue
            ts = df["_ts"].to_numpy()
            i, j = np.searchsorted(ts, start, "left"), np.searchsorted(ts, end, "right")
            if j > i:
                parts.append(df.iloc[i:j])
        if not parts:
            return pd.DataFrame()
        return pd.concat(parts, ignore_index=True)


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


def read_reference(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise SampleFileError(f"training reference {path} does not exist")
    return _read_table(path)
