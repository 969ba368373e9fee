"""Production feature samples and predictions: files under a directory/glob, plus rows
posted to `POST /v1/samples` and kept in the store. Training references are files too.
"""
from __future__ import annotations

import glob
import logging
import os
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from monitor.sources.cache import BoundedCache
from monitor.sources.posted_samples import records_frame as records_frame  # (its home before)
from monitor.sources.spool import Spool
from monitor.sources.table_files import FileCheck, SampleFileError, read_table, require_times, wide_integers_as_text
from monitor.sources.text_times import parse_datetimes

log = logging.getLogger("vigil.samples")
_TABLE_SUFFIXES = (".parquet", ".pq", ".csv")  # what a samples folder holds (read_table reads them)
_GLOB_SUFFIXES = (*_TABLE_SUFFIXES, ".txt")  # what a glob reads: every file read_table takes


def epoch_seconds(v: np.ndarray, size: np.ndarray | float) -> np.ndarray:
    """Epoch numbers in seconds, milliseconds, microseconds or nanoseconds (common in exported
    data) -> seconds, told apart by `size` (each value's, or a column's largest): seconds stay
    below 1e11 until the year 5138, and today's times are ~1.8e12 ms, ~1.8e15 us, ~1.8e18 ns."""
    with np.errstate(invalid="ignore"):
        return np.where(size > 1e17, v / 1e9, np.where(size > 1e14, v / 1e6, np.where(size > 1e11, v / 1e3, v)))


def to_epoch_seconds(col: pd.Series, *, where: str) -> np.ndarray:
    """Datetimes (naive = UTC), RFC3339 strings or epoch numbers -> float epoch seconds."""
    if pd.api.types.is_bool_dtype(col):  # before numbers: pandas counts booleans as numeric (True: 1970)
        raise SampleFileError(f"{where}: expected datetimes or epoch seconds, got booleans")
    if pd.api.types.is_numeric_dtype(col):
        v = col.to_numpy(dtype="float64")  # each value by its size, as the API (one ms row moved a file to 1970)
        return epoch_seconds(v, np.abs(v))
    try:
        dt = parse_datetimes(col)
    except (ValueError, TypeError) as e:
        raise SampleFileError(f"{where}: expected datetimes or epoch seconds ({e})") from None
    # Whatever unit the file kept (Spark writes microseconds), count microseconds: every time
    # fits there, while a placeholder such as 9999-12-31 does not fit in nanoseconds (and a
    # float of epoch seconds holds no finer than a microsecond anyway).
    out = dt.dt.as_unit("us").astype("int64").to_numpy() / 1e6
    out[dt.isna().to_numpy()] = np.nan  # a missing time is missing, not 1677
    return out


# Readers whose files are not held between their reads: the rolling reference reads a week once
# a day (held, it filled memory's budget and the drift windows' files were refused).
ONE_OFF_READERS = frozenset({"rolling"})
SAMPLE_CACHE_BYTES = 512 * 2**20  # sample files kept in memory, all models together
_SHARED = BoundedCache(SAMPLE_CACHE_BYTES)


class SampleFiles:
    """Reads sample files, each parsed once: with a `spool`, a parsed file is kept on disk as
    Arrow and memory-mapped by each later window (memory flat in the fleet's size); without
    one, or for a file Arrow cannot hold (a column mixing strings and numbers), in the
    bounded in-memory `cache` shared by every model's files, and beyond its budget re-read.
    A file no window overlaps any more is dropped. Each file's time range is kept (small),
    so a file outside the window is never opened."""

    def __init__(self, pattern: str | Path, timestamp_column: str, cache: BoundedCache | None = None,
                 spool: Spool | None = None, text_columns: Collection[str] = ()) -> None:
        self.pattern = str(pattern)
        self.timestamp_column = timestamp_column
        # CSV columns read as text (the categorical features): part of every cache key, as
        # another model may read the same file with other declarations
        self._text = tuple(sorted(set(text_columns)))
        self._cache = cache if cache is not None else _SHARED
        self._spool = spool
        self._ranges: dict[str, tuple[tuple[float, int], float, float]] = {}  # path -> (key, lo, hi)
        self._spooled: dict[str, str] = {}  # path -> its spool key, for the files that have one
        # purpose -> the last window it read: a file is dropped only when none of them needs it
        # (the drift window would otherwise drop what the performance horizon reads next)
        self._wanted: dict[str, tuple[float, float]] = {}

    def _files(self) -> list[str]:
        p = self.pattern
        if os.path.isdir(p):  # any case: an export's "PART-0.CSV" or a ".pq" file was skipped unsaid
            listed = glob.glob(os.path.join(p, "*"))
            tables = sorted(x for x in listed if Path(x).suffix.lower() in _TABLE_SUFFIXES)
            folders = [] if tables else sorted(x for x in listed if os.path.isdir(x))
            if folders:  # Spark's date=.../part-*.parquet: "no samples in the window" hid where they were
                raise SampleFileError(f"samples path {p} holds no table file, only folders such as {folders[0]}: "
                                      f"give a glob, such as {os.path.join(p, '*', '*.parquet')}")
            return tables
        # Not a Spark output's `_SUCCESS`, `.crc` or partition directory (each failed the window)
        matched = sorted(glob.glob(p))
        tables = [x for x in matched if Path(x).suffix.lower() in _GLOB_SUFFIXES]
        if matched and not tables:
            raise SampleFileError(f"samples path {p}: no .parquet, .pq, .csv or .txt file among the "
                                  f"{len(matched)} it matches (such as {matched[0]})")
        return tables

    def _range(self, path: str) -> tuple[tuple[float, int], float, float] | None:
        """The file's (key, first, last time) if it is unchanged since it was read."""
        st = os.stat(path)
        known = self._ranges.get(path)
        return known if known is not None and known[0] == (st.st_mtime, st.st_size) else None

    def _parse(self, path: str) -> pd.DataFrame:
        df = read_table(Path(path), self._text, self.timestamp_column)
        if self.timestamp_column not in df.columns:
            raise SampleFileError(
                f"{path}: timestamp column {self.timestamp_column!r} not found "
                f"(columns: {', '.join(map(str, df.columns[:20]))})"
            )
        where = f"{path} column {self.timestamp_column!r}"
        ts = require_times(to_epoch_seconds(df[self.timestamp_column], where=where), path, self.timestamp_column)
        df = df.assign(_ts=ts)
        missing = int(np.isnan(ts).sum())
        if missing:
            log.warning("sample rows without a timestamp skipped", extra={"file": path, "rows": missing})
            df = df[~np.isnan(ts)]
        return df.sort_values("_ts", kind="stable").reset_index(drop=True)

    def _spool_key(self, path: str, key: tuple[float, int]) -> str:
        return Spool.key("samples", os.path.abspath(path), key[0], key[1], self.timestamp_column, SPOOL_FORMAT,
                         *self._text)

    def _load(self, path: str) -> tuple[pd.DataFrame | pa.Table, float, float]:
        st = os.stat(path)
        key = (st.st_mtime, st.st_size)
        skey = self._spool_key(path, key) if self._spool is not None else None
        if skey is not None:
            table = self._mapped(skey)
            if table is not None:
                return self._spooled_table(path, key, skey, table)
        hit = self._cache.get((path, key, self._text))
        if hit is not None:
            return hit
        table, df = self._parse_any(path, arrow=skey is not None)
        if table is not None and skey is not None and self._spool is not None \
                and self._spool.put("samples", skey, memoryview(_ipc_bytes(table))):
            return self._spooled_table(path, key, skey, table)
        if df is None:
            df = _arrow_frame([table]) if table is not None else self._parse(path)
        lo, hi = (float(df["_ts"].iloc[0]), float(df["_ts"].iloc[-1])) if len(df) else (np.inf, -np.inf)
        self._ranges[path] = (key, lo, hi)
        self._cache.put((path, key, self._text), (df, lo, hi), int(df.memory_usage(deep=False).sum()))
        return df, lo, hi

    def _spooled_table(self, path: str, key: tuple[float, int], skey: str, table: pa.Table
                       ) -> tuple[pa.Table, float, float]:
        ts = table.column("_ts").to_numpy()
        lo, hi = (float(ts[0]), float(ts[-1])) if len(ts) else (np.inf, -np.inf)
        self._ranges[path], self._spooled[path] = (key, lo, hi), skey
        return table, lo, hi

    def _parse_any(self, path: str, arrow: bool) -> tuple[pa.Table | None, pd.DataFrame | None]:
        """The file as an Arrow table (parquet straight into Arrow, no pandas round trip) when
        it is wanted and possible, else as a frame (and its table when Arrow can hold it)."""
        if arrow and Path(path).suffix.lower() in (".parquet", ".pq"):
            try:
                return self._parquet_table(path), None
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
                pass  # an unusual file: the pandas reader decides
        df = self._parse(path)
        return (_arrow_table(df) if arrow else None), df

    def _parquet_table(self, path: str) -> pa.Table:
        """What `_parse` gives, built in Arrow: pandas' index columns dropped, rows without a
        time skipped, sorted by time, `_ts` last. String columns are read as the
        dictionaries parquet keeps them in (as the spool stores them: `_arrow_frame` makes
        them objects again), on this thread (a sweep's workers already use every core)."""
        with pa.OSFile(path) as source:  # opened once for both readers (15 % of a small file's read)
            pf = pq.ParquetFile(source)
            strings = [f.name for f in pf.schema_arrow if f.name != self.timestamp_column
                       and (pa.types.is_string(f.type) or pa.types.is_large_string(f.type))]
            if strings:
                pf = pq.ParquetFile(source, read_dictionary=strings, metadata=pf.metadata)
            table = pf.read(use_threads=False)
        meta = table.schema.pandas_metadata or {}
        index = [c for c in meta.get("index_columns", []) if isinstance(c, str) and c in table.column_names]
        table = wide_integers_as_text(table.drop_columns(index).replace_schema_metadata(None), self.timestamp_column)
        if self.timestamp_column not in table.column_names:
            raise SampleFileError(
                f"{path}: timestamp column {self.timestamp_column!r} not found "
                f"(columns: {', '.join(table.column_names[:20])})"
            )
        where = f"{path} column {self.timestamp_column!r}"
        ts = require_times(to_epoch_seconds(table.column(self.timestamp_column).to_pandas(), where=where),
                           path, self.timestamp_column)
        if "_ts" in table.column_names:
            table = table.drop_columns(["_ts"])
        ordered = not np.isnan(ts).any() and bool(np.all(ts[1:] >= ts[:-1]))  # as files usually are
        if not ordered:  # rows without a time skipped, the rest put in time order
            rows = np.flatnonzero(~np.isnan(ts))
            if len(rows) < len(ts):
                log.warning("sample rows without a timestamp skipped",
                            extra={"file": path, "rows": len(ts) - len(rows)})
            rows = rows[np.argsort(ts[rows], kind="stable")]
            table, ts = table.take(pa.array(rows)), ts[rows]
        kept = set(table.column_names)
        encoded = [name for name in strings if name in kept]
        return table.append_column("_ts", pa.array(ts)).replace_schema_metadata(
            {_DICTIONARY_COLUMNS: "\x1f".join(encoded).encode()})

    def _mapped(self, skey: str) -> pa.Table | None:
        assert self._spool is not None
        buf = self._spool.map("samples", skey)
        if buf is None:
            return None
        try:
            return pa.ipc.open_file(pa.py_buffer(buf)).read_all()
        except (pa.ArrowInvalid, OSError) as e:  # a damaged entry: parse the source again
            log.warning("spooled sample file unreadable, re-reading it", extra={"error": str(e)})
            self._spool.discard("samples", skey)
            return None

    def _forget(self, path: str, key: tuple[float, int]) -> None:
        """No window of this model needs the file now."""
        self._cache.discard((path, key, self._text))
        skey = self._spooled.pop(path, None)
        if skey is not None and self._spool is not None:
            self._spool.discard("samples", skey)

    def window(self, start: float, end: float, purpose: str = "", check: FileCheck | None = None,
               unreadable: list[str] | None = None) -> pd.DataFrame:
        """Rows with start <= t <= end from every file overlapping the window. `purpose` names
        the reader (its windows move on; another reader's windows are not this one's); `check`
        is called with each such file's path and content (a SampleFileError naming the file).
        Given `unreadable`, a file that cannot be read (a parquet still being written has no
        footer) is left out and its error added there, instead of the whole window raising."""
        if purpose not in ONE_OFF_READERS:
            self._wanted[purpose] = (start, end)
        wanted = [*self._wanted.values(), (start, end)]
        frames: list[pd.DataFrame] = []
        tables: list[pa.Table] = []
        paths = self._files()
        if len(self._ranges) > len(paths):  # files deleted since: forget them (a daemon runs for months)
            listed = set(paths)
            for gone in [p for p in self._ranges if p not in listed]:
                self._forget(gone, self._ranges.pop(gone)[0])
        for path in paths:
            try:
                known = self._range(path)
                if known is not None and (known[2] < start or known[1] > end):
                    if not any(known[2] >= lo and known[1] <= hi for lo, hi in wanted):
                        self._forget(path, known[0])
                    continue
                data, lo, hi = self._load(path)
            except FileNotFoundError:  # deleted between the listing and the read: not in this window
                continue
            except SampleFileError as e:
                if unreadable is None:
                    raise
                unreadable.append(str(e))
                continue
            if hi < start or lo > end:
                continue
            if check is not None:
                check(path, data)
            ts = data.column("_ts").to_numpy() if isinstance(data, pa.Table) else data["_ts"].to_numpy()
            i, j = int(np.searchsorted(ts, start, "left")), int(np.searchsorted(ts, end, "right"))
            if j > i:
                if isinstance(data, pa.Table):
                    tables.append(data.slice(i, j - i))
                else:
                    frames.append(data.iloc[i:j])
        if not frames:
            return _arrow_frame(tables) if tables else pd.DataFrame()  # a fresh frame, numbered from 0
        if tables:
            frames.insert(0, _arrow_frame(tables))
        return frames[0].reset_index(drop=True) if len(frames) == 1 else pd.concat(frames, ignore_index=True)


SPOOL_FORMAT = "arrow-v2"  # v2: CSV booleans of categorical columns read as booleans (table_files.py)
_DICTIONARY_COLUMNS = b"vigil.dictionary_columns"


def _arrow_table(df: pd.DataFrame) -> pa.Table | None:
    """A parsed frame as Arrow; None when Arrow cannot hold it exactly (a column mixing
    strings and numbers): that file stays on the in-memory path."""
    try:
        return pa.Table.from_pandas(df, preserve_index=False).replace_schema_metadata(None)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, ValueError, TypeError, OverflowError):
        return None


def _ipc_bytes(table: pa.Table) -> pa.Buffer:
    """Arrow IPC with strings dictionary-encoded: smaller, and mapped back to the same
    object columns by `_arrow_frame`. Columns read as dictionaries already are named so in
    the table's metadata."""
    listed = (table.schema.metadata or {}).get(_DICTIONARY_COLUMNS, b"").decode()
    encoded = [name for name in listed.split("\x1f") if name]
    for i, field in enumerate(table.schema):
        if pa.types.is_string(field.type) or pa.types.is_large_string(field.type):
            table = table.set_column(i, field.name, table.column(i).dictionary_encode())
            encoded.append(field.name)
    # One dictionary per column for the whole file (an IPC file holds no other).
    table = table.unify_dictionaries().replace_schema_metadata({_DICTIONARY_COLUMNS: "\x1f".join(encoded).encode()})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def _arrow_frame(tables: list[pa.Table]) -> pd.DataFrame:
    """Slices of spooled files -> the frame the files themselves give (string columns as
    objects, missing strings as None, as pandas reads them)."""
    if len(tables) > 1:
        try:
            table = pa.concat_tables(tables, promote_options="permissive")
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # files whose columns differ in type: as pandas would
            return pd.concat([_arrow_frame([t]) for t in tables], ignore_index=True)
    else:
        table = tables[0]
    encoded = {name for t in tables
               for name in (t.schema.metadata or {}).get(_DICTIONARY_COLUMNS, b"").decode().split("\x1f")} - {""}
    if len(set(table.column_names)) < table.num_columns:  # duplicate names: pandas' own conversion
        return _pandas_frame(table, encoded)
    # Column by column into numpy, then one frame of them as they are (not consolidated:
    # merging interleaved float and object columns into two blocks costs pandas more than
    # the rest together). Arrow's whole-table conversion built a pandas Categorical per
    # string column, validated its categories and made objects from it again: most of a
    # warm cycle's sample read.
    columns: dict[str, Any] = {}
    other: list[int] = []
    for i, field in enumerate(table.schema):
        col = table.column(i)
        if field.name in encoded and pa.types.is_dictionary(field.type):
            columns[field.name] = _strings(col)
        elif _plain_numbers(field.type, col):
            values = col.to_numpy()  # a copy when the window spans files, else a view of the spool
            columns[field.name] = values if values.flags.writeable else values.copy()
        else:  # datetimes, nullable integers, plain strings, a file's own categoricals...
            columns[field.name] = None
            other.append(i)
    if other:
        rest = table.select(other).to_pandas()
        for name in rest.columns:
            columns[name] = rest[name]
    # Every array is the frame's own (writable; no page of the mapped spool): no copy here.
    return pd.DataFrame(columns, index=pd.RangeIndex(table.num_rows), copy=False)


def _plain_numbers(typ: pa.DataType, col: pa.ChunkedArray) -> bool:
    """A column numpy holds as pandas would: floats (a null is NaN either way), integers and
    booleans without nulls (with nulls pandas makes them floats or objects)."""
    if pa.types.is_float32(typ) or pa.types.is_float64(typ):
        return True
    return (pa.types.is_integer(typ) or pa.types.is_boolean(typ)) and col.null_count == 0


def _strings(col: pa.ChunkedArray) -> np.ndarray:
    """A dictionary-encoded string column -> str objects, None where missing: each chunk's
    few distinct strings made once, spread by their codes."""
    parts = []
    for chunk in col.chunks:
        words = np.empty(len(chunk.dictionary) + 1, dtype=object)  # the last stays None: missing
        words[:-1] = chunk.dictionary.to_numpy(zero_copy_only=False)
        codes = chunk.indices
        if chunk.null_count:  # (widened first: the missing code may not fit the indices' type)
            codes = codes.cast(pa.int64()).fill_null(len(words) - 1)
        parts.append(words.take(codes.to_numpy()))
    if not parts:
        return np.empty(0, dtype=object)
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _pandas_frame(table: pa.Table, encoded: set[str]) -> pd.DataFrame:
    """Arrow's own conversion, its categoricals of spooled strings turned back into objects."""
    df = table.to_pandas()
    for name in sorted(encoded):
        if name not in df.columns or not isinstance(df[name].dtype, pd.CategoricalDtype):
            continue
        cat = df[name].array
        values = np.asarray(cat, dtype=object)
        values[np.asarray(cat.isna())] = None
        df[name] = values
    return df


def read_reference(path: Path, columns: Sequence[str] | None = None,
                   text_columns: Collection[str] = ()) -> pd.DataFrame:
    """The training reference as pandas reads it; with `columns`, only those when the file
    has them all (a reference often carries labels, ids or text no detector reads) and
    every column otherwise, so a missing one is reported next to what the file holds."""
    if not path.exists():
        raise SampleFileError(f"training reference {path} does not exist")
    if path.suffix.lower() not in (".parquet", ".pq") or path.is_dir():  # CSV, or a dataset directory
        return read_table(path, text_columns)  # a CSV's categorical features kept as text, as the samples'
    # What pd.read_parquet does (the pandas metadata restores the index and the dtypes),
    # through the file reader rather than the dataset layer, on this thread.
    with pq.ParquetFile(path) as pf:
        present = set(pf.schema_arrow.names)
        wanted = list(dict.fromkeys(columns)) if columns is not None and present.issuperset(columns) else None
        table = pf.read(columns=wanted, use_threads=False, use_pandas_metadata=True)
    return table.to_pandas()
