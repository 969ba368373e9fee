"""Reference profiles: what a drift cycle needs to know about the reference, computed once.

A profile is built once per model version and stored; every later cycle only pays for
the current window. Numeric columns keep their finite values sorted (float32 when that
loses nothing, so exactness is kept at half the memory), their mean/std and the PSI/JS
bin edges at reference quantiles; categorical columns keep category counts. Missing,
non-finite and wrongly typed values are counted, never silently dropped.

This module holds the profile types, their storage and the helpers both profiling
modes share; how a numeric column is profiled and compared is the mode's business
(detectors/drift/modes.py: exact or sketch, chosen once per profile).
"""
from __future__ import annotations

import base64
import io
import json
import math
import struct
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from detectors.drift import scan
from detectors.drift.columns import ColumnCounts, count_column_categories
from detectors.drift.storage import Located, locate_npz, read_npz, wrap_npz, write_npz

# 2: datetime and duration columns in nanoseconds whatever unit the file kept. A format-1
# profile of a microsecond column (Spark's parquet) holds microseconds; read against a
# window now in nanoseconds it was 100% drift on identical times, so it is not loaded
# (ValueError) and is profiled again from the reference.
# 3: a CSV reference's categorical features read as text ("02139", no longer the number
# 2139, as the samples now are too): an older profile would call every such value new.
# 4: a category written as an integral float ("1.0") is labelled "1", as the number 1.0 is
# (category_label): an older profile's "1.0" would be a new category next to the window's "1".
# 5: an empty text in a categorical column is missing (an empty CSV cell is): an older profile
# of a parquet reference holding "" as a category would call the window's missing rows drift.
# 6: a CSV reference's categorical `true`/`false` read as booleans, as parquet holds them (True).
# 7: a numeric feature of time objects (parquet dates, zones mixed) profiled as times, not as text.
# 8: a numeric feature of ISO 8601 text (a CSV's datetimes) profiled as times.
PROFILE_FORMAT = 8
DEFAULT_QUANTILE_BINS = 10
# Evidently switches from value bins to equal-width bins above 20 distinct reference
# values; low-cardinality numeric columns are binned by value the same way here.
LOW_CARDINALITY_MAX = 20
ProfileModeName = Literal["exact", "sketch"]


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
    mode: ProfileModeName = "exact"
    quantile_bins: int = DEFAULT_QUANTILE_BINS
    # The reference's rows it holds when not all: their hours of day ("13:00-16:00 UTC", see
    # time_of_day.py), or why the whole reference stands in; not stored (slices are not).
    rows: str = ""

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
        write_npz(buf, arrays)
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, b: bytes | memoryview) -> ReferenceProfile:
        """The profile `to_bytes` wrote; ValueError for anything else (damaged, truncated, or
        not a profile), whatever the zip or JSON reader raised, so callers can rebuild it."""
        try:
            return cls._from_bytes(b)
        except _UNREADABLE as e:
            raise ValueError(f"reference profile: unreadable ({type(e).__name__}: {e})") from e

    @classmethod
    def _from_bytes(cls, b: bytes | memoryview) -> ReferenceProfile:
        header, n_head = _header(b)
        return cls._assemble(header, read_npz(memoryview(b)[8 + n_head :]))

    @classmethod
    def _assemble(cls, header: dict[str, Any], arrays: dict[str, np.ndarray]) -> ReferenceProfile:
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

    def to_dict(self) -> dict[str, Any]:
        """The drift detector's fitted state as JSON: the `to_bytes` blob in base64."""
        return {"format": "vigil-drift-profile", "blob": base64.b64encode(self.to_bytes()).decode("ascii")}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ReferenceProfile:
        if not isinstance(d, Mapping) or d.get("format") != "vigil-drift-profile" or not isinstance(d.get("blob"), str):
            raise ValueError("reference profile: expected {'format': 'vigil-drift-profile', 'blob': <base64>}")
        return cls.from_bytes(base64.b64decode(d["blob"]))




def _header(b: bytes | memoryview) -> tuple[dict[str, Any], int]:
    """A profile blob's JSON header and its length; ValueError for another format."""
    if len(b) < 8:
        raise ValueError("reference profile: expected at least 8 bytes of header length")
    n_head = int.from_bytes(b[:8], "little")
    header = json.loads(bytes(b[8 : 8 + n_head]))
    if header.get("format") != PROFILE_FORMAT:
        raise ValueError(
            f"reference profile: format {header.get('format')!r} is not the supported {PROFILE_FORMAT}"
        )
    return header, n_head


_UNREADABLE = (KeyError, TypeError, IndexError, AttributeError, EOFError, OSError, struct.error,
               zipfile.BadZipFile)


@dataclass
class _Layout:
    head: bytes  # the length and JSON header, as read
    tail: bytes  # the zip's central directory and end record, as read
    size: int
    header: dict[str, Any]
    located: Located


class ProfileReader:
    """`ReferenceProfile.from_bytes` for blobs read again and again under one key (a spooled
    profile mapped every cycle): the parsed JSON header and where each array sits are kept
    per key and reused while the blob's size, header and zip directory are byte for byte
    the ones parsed, so a cycle only wraps the arrays. Holds at most `max_keys` layouts."""

    def __init__(self, max_keys: int = 4096) -> None:
        self._layouts: dict[str, _Layout] = {}
        self._max_keys = max_keys

    def read(self, key: str, b: bytes | memoryview) -> ReferenceProfile:
        """The profile in `b`; ValueError as from_bytes raises it."""
        view = memoryview(b)
        known = self._layouts.get(key)
        try:
            if known is None or known.size != len(view) or view[: len(known.head)] != known.head \
                    or view[len(view) - len(known.tail):] != known.tail:
                known = self._parse(key, view)
                if known is None:  # not a plain .npz: np.load reads it
                    return ReferenceProfile.from_bytes(view)
            return ReferenceProfile._assemble(known.header, wrap_npz(view[len(known.head):], known.located))
        except _UNREADABLE as e:
            self._layouts.pop(key, None)
            raise ValueError(f"reference profile: unreadable ({type(e).__name__}: {e})") from e

    def _parse(self, key: str, view: memoryview) -> _Layout | None:
        header, n_head = _header(view)
        located = locate_npz(view[8 + n_head :])
        if located is None:
            self._layouts.pop(key, None)
            return None
        if len(self._layouts) >= self._max_keys:
            self._layouts.clear()
        # Past the last array: the zip directory, which holds every member's size, offset and CRC.
        end = 8 + n_head + max((at + count * dtype.itemsize for _, dtype, count, at, _, _ in located), default=0)
        layout = self._layouts[key] = _Layout(bytes(view[: 8 + n_head]), bytes(view[end:]), len(view), header,
                                              located)
        return layout

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
    Values beyond ~1e154 overflow the squares (std inf, so Wasserstein / std read 0, "no
    drift"): then both are taken on the values scaled by a power of two, which is exact.
    """
    mean, std = _mean_std(values)
    if len(values) and not (math.isfinite(mean) and math.isfinite(std)):
        top = float(np.max(np.abs(values)))
        if math.isfinite(top) and top > 0:
            scale = 2.0 ** math.frexp(top)[1]
            mean, std = _mean_std(values.astype(np.float64) / scale)
            mean, std = mean * scale, std * scale
    return mean, std


def _mean_std(values: np.ndarray) -> tuple[float, float]:
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
def profile_categorical(series: pd.Series) -> CategoricalProfile:
    cats, cat_counts, counts = count_column_categories(series)
    return CategoricalProfile(counts=counts, categories=cats, category_counts=cat_counts)

