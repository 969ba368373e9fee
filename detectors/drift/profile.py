"""Reference profiles: what a drift cycle needs to know about the reference, computed once.

A profile is built once per model version and stored; every later cycle only pays for
the current window. Numeric columns keep their finite values sorted (float32 when that
loses nothing, so exactness is kept at half the memory), their mean/std and the PSI/JS
bin edges at reference quantiles; categorical columns keep category counts. Missing,
non-finite and wrongly typed values are counted, never silently dropped.
"""
from __future__ import annotations

import ctypes
import io
import json
import struct
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, TypeVar

import numpy as np
import pandas as pd

from detectors.drift import scan

PROFILE_FORMAT = 1
DEFAULT_QUANTILE_BINS = 10
# Evidently switches from value bins to equal-width bins above 20 distinct reference
# values; low-cardinality numeric columns are binned by value the same way here.
LOW_CARDINALITY_MAX = 20
# Below this many rows an object column is hashed value by value (pointer hashing pays
# for its extra passes only on long columns).
OBJECT_IDENTITY_MIN_ROWS = 4096
# Distinct objects the compiled identity count handles before handing over to pandas.
OBJECT_IDENTITY_MAX_UNIQUE = 4096


@dataclass
class FeatureSpec:
    name: str
    type: Literal["numeric", "categorical"] = "numeric"

    def __post_init__(self) -> None:
        if self.type not in ("numeric", "categorical"):
            raise ValueError(
                f"FeatureSpec {self.name!r}: type must be 'numeric' or 'categorical', got {self.type!r}"
            )


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
class NumericProfile:
    counts: ColumnCounts
    sorted_values: np.ndarray | None  # finite values, ascending; None in sketch mode
    mean: float
    std: float  # population std (ddof=0), as Evidently normalises Wasserstein
    minimum: float
    maximum: float
    edges: np.ndarray  # inner PSI/JS bin edges at reference quantiles, bins (-inf,e1],...,(ek,inf)
    edge_counts: np.ndarray  # reference counts in those bins
    distinct: np.ndarray | None  # distinct values when <= LOW_CARDINALITY_MAX, else None
    distinct_counts: np.ndarray | None
    sketch: bytes | None = None  # serialised KLL sketch in sketch mode

    @property
    def n(self) -> int:
        return self.counts.n_valid


@dataclass
class CategoricalProfile:
    counts: ColumnCounts
    categories: list[str]
    category_counts: np.ndarray  # int64, aligned with categories

    @property
    def n(self) -> int:
        return self.counts.n_valid


@dataclass
class ReferenceProfile:
    """Everything `compare` needs from the reference, serialisable with to_bytes/from_bytes."""

    features: list[FeatureSpec]
    n_rows: int
    columns: dict[str, NumericProfile | CategoricalProfile] = field(default_factory=dict)
    mode: Literal["exact", "sketch"] = "exact"
    quantile_bins: int = DEFAULT_QUANTILE_BINS

    def feature(self, name: str) -> FeatureSpec:
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(f"feature {name!r} is not in the reference profile")

    def to_bytes(self) -> bytes:
        header: dict[str, Any] = {
            "format": PROFILE_FORMAT,
            "n_rows": self.n_rows,
            "mode": self.mode,
            "quantile_bins": self.quantile_bins,
            "features": [{"name": f.name, "type": f.type} for f in self.features],
            "columns": {},
        }
        arrays: dict[str, np.ndarray] = {}
        for i, f in enumerate(self.features):
            col = self.columns[f.name]
            c = col.counts
            meta: dict[str, Any] = {
                "key": i,
                "counts": [c.n_rows, c.n_missing, c.n_nonfinite, c.n_type_mismatch],
            }
            if isinstance(col, NumericProfile):
                meta.update(mean=col.mean, std=col.std, minimum=col.minimum, maximum=col.maximum)
                named = {
                    "sorted": col.sorted_values,
                    "edges": col.edges,
                    "edge_counts": col.edge_counts,
                    "distinct": col.distinct,
                    "distinct_counts": col.distinct_counts,
                    "sketch": None if col.sketch is None else np.frombuffer(col.sketch, np.uint8),
                }
                for k, v in named.items():
                    if v is not None:
                        arrays[f"{i}_{k}"] = v
            else:
                meta["categories"] = col.categories
                arrays[f"{i}_category_counts"] = col.category_counts
            header["columns"][f.name] = meta
        buf = io.BytesIO()
        head = json.dumps(header).encode()
        buf.write(len(head).to_bytes(8, "little"))
        buf.write(head)
        # Uncompressed: sorted floats barely compress and compression would cost more
        # than the cycle it saves. Aligned, so that loading is zero-copy.
        _write_npz(buf, arrays)
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, b: bytes) -> "ReferenceProfile":
        if len(b) < 8:
            raise ValueError("reference profile: expected at least 8 bytes of header length")
        n_head = int.from_bytes(b[:8], "little")
        header = json.loads(b[8 : 8 + n_head])
        if header.get("format") != PROFILE_FORMAT:
            raise ValueError(
                f"reference profile: format {header.get('format')!r} is not the supported {PROFILE_FORMAT}"
            )
        arrays = _read_npz(memoryview(b)[8 + n_head :])
        features = [FeatureSpec(f["name"], f["type"]) for f in header["features"]]
        columns: dict[str, NumericProfile | CategoricalProfile] = {}
        for f in features:
            meta = header["columns"][f.name]
            i = meta["key"]
            counts = ColumnCounts(*meta["counts"])
            if f.type == "numeric":
                sk = arrays.get(f"{i}_sketch")
                columns[f.name] = NumericProfile(
                    counts=counts,
                    sorted_values=arrays.get(f"{i}_sorted"),
                    mean=meta["mean"],
                    std=meta["std"],
                    minimum=meta["minimum"],
                    maximum=meta["maximum"],
                    edges=arrays[f"{i}_edges"],
                    edge_counts=arrays[f"{i}_edge_counts"],
                    distinct=arrays.get(f"{i}_distinct"),
                    distinct_counts=arrays.get(f"{i}_distinct_counts"),
                    sketch=None if sk is None else sk.tobytes(),
                )
            else:
                columns[f.name] = CategoricalProfile(
                    counts=counts,
                    categories=list(meta["categories"]),
                    category_counts=arrays[f"{i}_category_counts"],
                )
        return cls(
            features=features,
            n_rows=header["n_rows"],
            columns=columns,
            mode=header["mode"],
            quantile_bins=header["quantile_bins"],
        )


# Zip extra-field id used for alignment padding (as Android's zipalign does).
_ALIGN_EXTRA_ID = 0xD935
_ALIGN = 64


def _write_npz(out: io.BytesIO, arrays: dict[str, np.ndarray]) -> None:
    """What np.savez writes (a .npz np.load reads), with each array's data 64-byte
    aligned in `out`: the local zip header is padded with an extra field, and .npy
    headers are already padded to 64 bytes, so `_read_npz` can wrap the data in place."""
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        for key, arr in arrays.items():
            npy = io.BytesIO()
            np.lib.format.write_array(npy, np.asanyarray(arr), allow_pickle=False)
            name = f"{key}.npy"
            fixed = out.tell() + 30 + len(name.encode()) + 4  # local header, name, extra-field head
            pad = -fixed % _ALIGN
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED
            info.extra = struct.pack("<HH", _ALIGN_EXTRA_ID, pad) + bytes(pad)
            zf.writestr(info, npy.getbuffer())


class _BufferReader(io.RawIOBase):
    """A seekable read-only file over a memoryview, without io.BytesIO's full copy."""

    def __init__(self, buf: memoryview) -> None:
        self._buf = buf
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: len(self._buf)}[whence]
        self._pos = max(base + offset, 0)
        return self._pos

    def readinto(self, b) -> int:  # type: ignore[override]
        chunk = self._buf[self._pos : self._pos + len(b)]
        b[: len(chunk)] = chunk
        self._pos += len(chunk)
        return len(chunk)


def _read_npz(buf: memoryview) -> dict[str, np.ndarray]:
    """The arrays of an uncompressed .npz, as read-only views of `buf` where aligned.

    np.load copies every member through zipfile and checks its CRC: on a 200k-row
    profile that is most of the time it takes to load. The members that to_bytes writes
    are stored uncompressed, so each array is located in place (zip local header, then
    the .npy header) and wrapped; a member that is compressed or otherwise unexpected
    goes through np.load.
    """
    arrays: dict[str, np.ndarray] = {}
    with zipfile.ZipFile(_BufferReader(buf)) as zf:
        infos = zf.infolist()
        if any(i.compress_type != zipfile.ZIP_STORED or not i.filename.endswith(".npy") for i in infos):
            npz = np.load(io.BytesIO(buf), allow_pickle=False)
            return {k: npz[k] for k in npz.files}
        for info in infos:
            name_len, extra_len = struct.unpack_from("<HH", buf, info.header_offset + 26)
            start = info.header_offset + 30 + name_len + extra_len
            head = io.BytesIO(buf[start : start + min(info.file_size, 65536)])
            version = np.lib.format.read_magic(head)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read_header(head)
            if dtype.hasobject:
                raise ValueError("reference profile: object arrays are not allowed")
            count = int(np.prod(shape, dtype=np.int64))
            offset = start + head.tell()
            if offset + count * dtype.itemsize > start + info.file_size:
                raise ValueError(f"reference profile: member {info.filename!r} is truncated")
            arr = np.frombuffer(buf, dtype=dtype, count=count, offset=offset)
            if not arr.flags.aligned:
                arr = arr.copy()  # unaligned views are slow to read and the kernels want aligned data
            arrays[info.filename[: -len(".npy")]] = arr.reshape(shape, order="F" if fortran else "C")
    return arrays


# ---------------------------------------------------------------- column cleaning


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
        coerced = pd.to_numeric(series, errors="coerce")
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
    return str(value)


def count_column_categories(series: pd.Series) -> tuple[list[str], np.ndarray, ColumnCounts]:
    """Category labels (as strings) and their counts, missing values counted apart.

    One hash pass over the raw column (or none for a pandas categorical); only the
    distinct values are turned into labels, and spellings that meet (3 and 3.0) merge.
    """
    if isinstance(series.dtype, pd.CategoricalDtype):
        codes = series.cat.codes.to_numpy()
        uniques = np.asarray(series.cat.categories, dtype=object)
        counts = np.bincount(codes + 1, minlength=len(uniques) + 1).astype(np.int64)
    elif series.dtype == object and len(series) >= OBJECT_IDENTITY_MIN_ROWS:
        uniques, counts = _count_objects(series.to_numpy())
    else:
        codes, uniques = pd.factorize(series, use_na_sentinel=True)
        uniques = np.asarray(uniques, dtype=object)
        counts = np.bincount(codes + 1, minlength=len(uniques) + 1).astype(np.int64)
    n_missing = int(counts[0])
    counts = counts[1:]
    labels = [category_label(u) for u in uniques]
    present = counts > 0
    if not present.all():
        labels = [lab for lab, p in zip(labels, present) if p]
        counts = counts[present]
    if len(set(labels)) != len(labels):
        merged: dict[str, int] = {}
        for lab, c in zip(labels, counts.tolist()):
            merged[lab] = merged.get(lab, 0) + c
        labels, counts = list(merged), np.array(list(merged.values()), dtype=np.int64)
    return labels, counts, ColumnCounts(len(series), n_missing, 0, 0)


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
            return np.asarray(uniques, dtype=object), np.bincount(codes + 1, minlength=len(uniques) + 1).astype(np.int64)
        # Any row of a pointer code holds that very object; which one wins the scatter is moot.
        row_of = np.empty(len(ptr_uniques), dtype=np.intp)
        row_of[ptr_codes] = np.arange(n, dtype=np.intp)
        ptr_counts = np.bincount(ptr_codes, minlength=len(ptr_uniques))
    del pointers  # a view of `values`' memory: never let it outlive the array
    codes, uniques = pd.factorize(values[row_of], use_na_sentinel=True)
    counts = np.bincount(codes + 1, weights=ptr_counts, minlength=len(uniques) + 1)
    return np.asarray(uniques, dtype=object), np.rint(counts).astype(np.int64)


# ---------------------------------------------------------------- profiling


T = TypeVar("T")
R = TypeVar("R")


def in_threads(fn: Callable[[T], R], items: list[T], workers: int) -> list[R]:
    """[fn(x) for x in items], `workers` at a time in threads; order kept, errors raised."""
    if workers <= 1 or len(items) <= 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(max_workers=min(workers, len(items)), thread_name_prefix="vigil-drift") as ex:
        return list(ex.map(fn, items))


def quantile_edges(sorted_values: np.ndarray, n_bins: int) -> np.ndarray:
    """Inner edges at reference quantiles; ties collapse so every reference bin is non-empty."""
    if len(sorted_values) == 0:
        return np.empty(0, dtype=np.float64)
    edges = np.unique(sorted_quantiles(sorted_values, np.arange(1, n_bins) / n_bins))
    return edges[edges < float(sorted_values[-1])]


def sorted_quantiles(sorted_values: np.ndarray, q: np.ndarray) -> np.ndarray:
    """np.quantile(..., method="linear") of an ascending array, without partitioning it again."""
    h = (len(sorted_values) - 1) * np.asarray(q, dtype=np.float64)
    lo = np.floor(h).astype(np.int64)
    hi = np.minimum(lo + 1, len(sorted_values) - 1)
    a = sorted_values[lo].astype(np.float64)
    b = sorted_values[hi].astype(np.float64)
    return a + (h - lo) * (b - a)


def mean_std(values: np.ndarray) -> tuple[float, float]:
    """Mean and population std, as np.mean/np.std give them (to ~1e-16 relative).

    No np.dot: BLAS threads spin against other work on a busy machine (25x slower here).
    """
    if scan.HAVE_NUMBA and len(values):
        mean, std = scan.mean_std(*scan.kernel_args(values))
        return float(mean), float(std)
    v = values.astype(np.float64, copy=False)
    mean = float(v.sum() / len(v))
    d = v - mean
    np.multiply(d, d, out=d)
    return mean, float(np.sqrt(d.sum() / len(v)))


def bin_counts(sorted_values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts in bins (-inf, e1], (e1, e2], ..., (ek, inf) of an ascending array."""
    cuts = np.searchsorted(sorted_values, edges, side="right")
    return np.diff(np.concatenate(([0], cuts, [len(sorted_values)]))).astype(np.int64)


def distinct_counts(sorted_values: np.ndarray, limit: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Distinct values and their counts of an ascending array, or None above `limit`."""
    if len(sorted_values) == 0:
        return np.empty(0, np.float64), np.empty(0, np.int64)
    changes = sorted_values[1:] != sorted_values[:-1]
    if np.count_nonzero(changes) + 1 > limit:
        return None  # without building an index array as long as the column
    starts = np.flatnonzero(np.concatenate(([True], changes)))
    counts = np.diff(np.concatenate((starts, [len(sorted_values)]))).astype(np.int64)
    return sorted_values[starts].astype(np.float64), counts


def profile_numeric(series: pd.Series, quantile_bins: int = DEFAULT_QUANTILE_BINS) -> NumericProfile:
    col = numeric_column(series)
    values = np.sort(col.values)
    return numeric_profile_from_sorted(values, col.counts, quantile_bins)


def numeric_profile_from_sorted(
    values: np.ndarray, counts: ColumnCounts, quantile_bins: int = DEFAULT_QUANTILE_BINS
) -> NumericProfile:
    if len(values):
        mean, std = mean_std(values)
        lo, hi = float(values[0]), float(values[-1])
    else:
        mean = std = lo = hi = float("nan")
    edges = quantile_edges(values, quantile_bins)
    dc = distinct_counts(values, LOW_CARDINALITY_MAX)
    return NumericProfile(
        counts=counts,
        sorted_values=values,
        mean=mean,
        std=std,
        minimum=lo,
        maximum=hi,
        edges=edges,
        edge_counts=bin_counts(values, edges),
        distinct=None if dc is None else dc[0],
        distinct_counts=None if dc is None else dc[1],
    )


def profile_categorical(series: pd.Series) -> CategoricalProfile:
    cats, cat_counts, counts = count_column_categories(series)
    return CategoricalProfile(counts=counts, categories=cats, category_counts=cat_counts)


def profile_reference(
    reference: pd.DataFrame,
    features: list[FeatureSpec],
    *,
    quantile_bins: int = DEFAULT_QUANTILE_BINS,
    mode: Literal["exact", "sketch"] = "exact",
    workers: int = 1,
) -> ReferenceProfile:
    """Profile the reference once per model version; one column at a time so memory stays
    at the data plus a column's copies (`workers` columns at a time in threads when
    > 1). mode="sketch" keeps mergeable KLL sketches instead of sorted values (see
    detectors/drift/sketch.py for the error bound)."""
    if mode == "sketch":
        from detectors.drift.sketch import sketch_profile

        return sketch_profile(reference, features, quantile_bins=quantile_bins)
    if mode != "exact":
        raise ValueError(f"profile_reference: mode must be 'exact' or 'sketch', got {mode!r}")
    if not features:
        raise ValueError("profile_reference: expected at least one FeatureSpec in features")
    missing = [f.name for f in features if f.name not in reference.columns]
    if missing:
        raise ValueError(
            f"profile_reference: reference has no column(s) {missing}; it has {list(reference.columns)[:20]}"
        )
    if quantile_bins < 2:
        raise ValueError(f"profile_reference: quantile_bins must be >= 2, got {quantile_bins}")
    if workers < 1:
        raise ValueError(f"profile_reference: workers must be >= 1, got {workers}")
    series = {f.name: reference[f.name] for f in features}  # on this thread: see compare()

    def one(f: FeatureSpec) -> NumericProfile | CategoricalProfile:
        s = series[f.name]
        return profile_numeric(s, quantile_bins) if f.type == "numeric" else profile_categorical(s)

    columns = dict(zip([f.name for f in features], in_threads(one, features, workers)))
    return ReferenceProfile(
        features=list(features), n_rows=len(reference), columns=columns, quantile_bins=quantile_bins
    )
