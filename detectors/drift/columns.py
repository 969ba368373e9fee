"""Columns as the drift statistics need them: finite numbers or category counts, with
what had to be left out (missing, infinite, not a number) counted, never dropped silently."""
from __future__ import annotations

import ctypes
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from detectors.drift import scan

# Below this many rows an object column is hashed value by value (pointer hashing pays
# for its extra passes only on long columns).
OBJECT_IDENTITY_MIN_ROWS = 4096
# Distinct objects the compiled identity count handles before handing over to pandas.
OBJECT_IDENTITY_MAX_UNIQUE = 4096


@dataclass
class ColumnCounts:
    """How many rows a column had and why some of them cannot enter the statistics."""

    n_rows: int
    n_missing: int  # NaN / None
    n_nonfinite: int  # +-inf (numeric only)
    n_type_mismatch: int  # present but not a number (numeric only)

    @property
    def n_valid(self) -> int:
        return self.n_rows - self.n_missing - self.n_nonfinite - self.n_type_mismatch

    @property
    def missing_rate(self) -> float:
        return self.n_missing / self.n_rows if self.n_rows else float("nan")



@dataclass
class NumericColumn:
    """A column reduced to its finite float values, with what was removed counted."""

    values: np.ndarray  # finite, float32 when exact, else float64; not sorted
    counts: ColumnCounts


def numeric_column(series: pd.Series) -> NumericColumn:
    """Finite values of a column meant to be numeric; strings that are not numbers count
    as type mismatches instead of raising."""
    n_rows = len(series)
    if pd.api.types.is_bool_dtype(series.dtype):
        series = series.astype("float64")
    if pd.api.types.is_numeric_dtype(series.dtype):
        # numpy dtypes convert without a copy; nullable extension dtypes need na_value
        if isinstance(series.dtype, np.dtype):
            arr = series.to_numpy()
        else:
            arr = series.to_numpy(dtype=np.float64, na_value=np.nan)
        n_mismatch = 0
    else:
        coerced = _coerce_numbers(series)
        n_mismatch = int(coerced.isna().sum() - series.isna().sum())
        arr = coerced.to_numpy(dtype=np.float64, na_value=np.nan)
    if arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float64)
    if scan.HAVE_NUMBA and arr.flags.c_contiguous:
        # one pass, no masks: counts and the float32 check (below) come together
        n_finite, n_nan, exact32 = scan.finite_scan(*scan.kernel_args(arr))
        values = arr if n_finite == n_rows else arr[np.isfinite(arr)]
        if exact32 and values.dtype == np.float64:
            values = values.astype(np.float32)
    else:
        finite = np.isfinite(arr)
        n_finite = int(np.count_nonzero(finite))
        n_nan = int(np.count_nonzero(np.isnan(arr))) if n_finite < n_rows else 0
        values = _narrow(arr if n_finite == n_rows else arr[finite])
    n_missing = n_nan - n_mismatch
    n_nonfinite = n_rows - n_finite - n_nan
    return NumericColumn(values=values, counts=ColumnCounts(n_rows, n_missing, n_nonfinite, n_mismatch))


def _coerce_numbers(series: pd.Series) -> pd.Series:
    """Numbers of a column that is not numeric yet (objects, text): text that is not a
    number becomes NaN (a type mismatch). An integer beyond the float range (a JSON
    `1` followed by 400 zeros) becomes +-inf, so it is dropped and counted as non-finite
    with the other infinities, instead of an OverflowError taking the whole column (and
    the cycle's drift) down."""
    if series.dtype.kind in "mM":  # datetimes, durations: NaT is missing, not -9.2e18 (the year 1677)
        # In nanoseconds whatever unit the column kept: Spark's files hold microseconds (read
        # as datetime64[us]), pandas' nanoseconds, and the same times read 1,000x apart (drift).
        scale = _NS_PER_UNIT[series.dt.unit]
        return (pd.to_numeric(series, errors="coerce").astype("float64") * scale).mask(series.isna())
    if series.dtype == object and pd.api.types.infer_dtype(series, skipna=True) in ("datetime", "date"):
        # Times as objects: files with and without a zone joined (naive and UTC Timestamps), or
        # a parquet date32 column (datetime.date): each was "not a number", the feature blind.
        try:
            return _coerce_numbers(pd.to_datetime(series, utc=True))  # a time without a zone is UTC
        except (ValueError, TypeError, OverflowError):  # (beyond pandas' years): as before
            pass
    try:
        numbers = pd.to_numeric(series, errors="coerce")
    except OverflowError:  # rare: one value by one, only for such a column
        return pd.Series(_FLOAT_OR_INF(series.to_numpy(dtype=object)).astype(np.float64), index=series.index)
    return _text_times(series, numbers)


def _text_times(series: pd.Series, numbers: pd.Series) -> pd.Series:
    """`numbers`, unless the column holds no number but every value is an ISO 8601 time: a
    CSV reference's datetime feature is text, and all of it read 'not a number' (the feature
    blind for good next to parquet samples holding the same times)."""
    present = series.notna()
    if series.dtype != object or numbers.notna().any() or not present.any():
        return numbers
    try:
        times = pd.to_datetime(series, utc=True, errors="coerce", format="ISO8601")
    except (ValueError, TypeError, OverflowError):
        return numbers
    return _coerce_numbers(times) if bool(times.notna().eq(present).all()) else numbers


def _float_or_inf(value: object) -> float:
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:
            return math.inf if value > 0 else -math.inf
    try:
        return float(pd.to_numeric(value, errors="coerce"))
    except (TypeError, ValueError, OverflowError):
        return math.nan


_FLOAT_OR_INF = np.frompyfunc(_float_or_inf, 1, 1)
_NS_PER_UNIT = {"s": 1e9, "ms": 1e6, "us": 1e3, "ns": 1.0}


def to_floats(series: pd.Series) -> np.ndarray:
    """A column as float64, whatever it holds: NaN for what is not a number, +-inf beyond
    the float range (for callers that mask with `np.isfinite` themselves)."""
    if pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(series.dtype):
        return series.to_numpy(dtype=np.float64, na_value=np.nan)
    return _coerce_numbers(series).to_numpy(dtype=np.float64, na_value=np.nan)


def _narrow(values: np.ndarray) -> np.ndarray:
    """float32 when every value survives the round trip: halves memory and sort time
    without changing a single statistic."""
    if values.dtype == np.float32:
        return values
    v32 = values.astype(np.float32)
    if np.array_equal(v32, values):
        return v32
    return values


def category_label(value: object) -> str:
    """Integral floats print as integers: an int column that gains a NaN becomes float in
    pandas, and "3.0" must not look like a new category next to "3"."""
    if isinstance(value, (float, np.floating)) and np.isfinite(value) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, str) and (value.endswith(".0") or "e+" in value):
        # An integral float as pandas writes it ("1.0", "1e+16"): a CSV file whose column is
        # all plain numbers reads it as the number 1.0 (monitor/sources/table_files.py), one
        # with a word in it keeps the text: one category must not split in two by file.
        try:
            f = float(value)
        except ValueError:
            return value
        if math.isfinite(f) and f.is_integer() and value == repr(f):
            return str(int(f))
    return str(value)


MISSING_TEXT = ""  # a category spelt so is a missing value


def missing_categories(series: pd.Series) -> np.ndarray:
    """Rows `count_column_categories` counts as missing: NaN/None, and the empty text."""
    try:
        empty = series.isin([MISSING_TEXT])
    except TypeError:  # unhashable values (a parquet list column): by their text
        empty = series.map(hashable_value).isin([MISSING_TEXT])
    return (series.isna() | empty).to_numpy(dtype=bool)


def count_column_categories(series: pd.Series) -> tuple[list[str], np.ndarray, ColumnCounts]:
    """Category labels (as strings) and their counts, missing values counted apart.

    One hash pass over the raw column (or none for a pandas categorical); only the
    distinct values are turned into labels, and spellings that meet (3 and 3.0) merge.
    """
    try:
        uniques, counts = _count_values(series)
    except TypeError:  # unhashable values (a parquet list column: arrays; dicts): counted by their text
        uniques, counts = _count_values(series.map(hashable_value))
    n_missing = int(counts[0])
    counts = counts[1:]
    labels = [category_label(u) for u in uniques]
    # An empty text is missing, as an empty CSV cell is (monitor/sources/table_files.py): the
    # same "" written to parquet was a category of its own, "new" next to a CSV reference's
    # missing cells, and the window was called drifted on the file format alone.
    present = counts > 0
    for i, label in enumerate(labels):
        if label == MISSING_TEXT and present[i]:
            n_missing += int(counts[i])
            present[i] = False
    if not present.all():
        labels = [lab for lab, p in zip(labels, present, strict=True) if p]
        counts = counts[present]
    if len(set(labels)) != len(labels):
        merged: dict[str, int] = {}
        for lab, c in zip(labels, counts.tolist(), strict=True):
            merged[lab] = merged.get(lab, 0) + c
        labels, counts = list(merged), np.array(list(merged.values()), dtype=np.int64)
    return labels, counts, ColumnCounts(len(series), n_missing, 0, 0)


def _count_values(series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values and their counts (slot 0: missing); TypeError on an unhashable value."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        codes = series.cat.codes.to_numpy()
        uniques = np.asarray(series.cat.categories, dtype=object)
        return uniques, np.bincount(codes + 1, minlength=len(uniques) + 1).astype(np.int64)
    if series.dtype == object and len(series) >= OBJECT_IDENTITY_MIN_ROWS:
        return _count_objects(series.to_numpy())
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    return np.asarray(uniques, dtype=object), np.bincount(codes + 1, minlength=len(uniques) + 1).astype(np.int64)


def hashable_value(value: object) -> object:
    """A value a hash table takes: an unhashable one (a list, an array, a dict) as its text,
    which the drift onset's `str(value)` gives too, so it shows as a category by name."""
    try:
        hash(value)
    except TypeError:
        return str(value)
    return value


def _count_objects(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values of an object column and their counts (slot 0: missing), as
    `pd.factorize` + `bincount` would give them, hashing pointers instead of objects.

    An object array holds pointers; a category column repeats a few objects (pandas'
    CSV reader and pyarrow's `to_pandas` share one object per distinct string). Equal
    pointers are the same object, so factorizing the pointers as integers is exact, and
    only one object per distinct pointer is then hashed as a value (equal values held by
    different objects merge there). Falls back to hashing every value when most rows
    hold their own object.
    """
    values = np.ascontiguousarray(values)
    n = len(values)
    pointers = np.ctypeslib.as_array((ctypes.c_ssize_t * n).from_address(values.ctypes.data))
    ok = False
    if scan.HAVE_NUMBA:
        _, ptr_counts, row_of, ok = scan.count_identities(pointers.view(np.int64), OBJECT_IDENTITY_MAX_UNIQUE)
    if not ok:  # many distinct objects: pandas' integer hash table
        ptr_codes, ptr_uniques = pd.factorize(pointers)
        if len(ptr_uniques) > n // 4:
            del pointers
            codes, uniques = pd.factorize(values, use_na_sentinel=True)
            counts = np.bincount(codes + 1, minlength=len(uniques) + 1).astype(np.int64)
            return np.asarray(uniques, dtype=object), counts
        # Any row of a pointer code holds that very object; which one wins the scatter is moot.
        row_of = np.empty(len(ptr_uniques), dtype=np.intp)
        row_of[ptr_codes] = np.arange(n, dtype=np.intp)
        ptr_counts = np.bincount(ptr_codes, minlength=len(ptr_uniques))
    del pointers  # a view of `values`' memory: never let it outlive the array
    codes, uniques = pd.factorize(values[row_of], use_na_sentinel=True)
    counts = np.bincount(codes + 1, weights=ptr_counts, minlength=len(uniques) + 1)
    return np.asarray(uniques, dtype=object), np.rint(counts).astype(np.int64)

