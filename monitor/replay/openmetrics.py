"""OpenMetrics text with explicit timestamps, for `promtool tsdb create-blocks-from openmetrics`.

A replay bundle's metrics.om is written here and loaded into a local Prometheus
(monitor/replay/local_prometheus.py), so replays run the same PromQL as production.

Rules that promtool's parser enforces and that this writer follows:
- a family's samples are contiguous, under one `# TYPE` (and optional `# HELP`) line;
- a counter family is named without `_total`, its samples carry `_total`;
- a histogram point is its `_bucket{le=...}` samples in ascending `le` ending with
  `le="+Inf"`, then `_count` and `_sum`, all at one timestamp;
- timestamps are seconds (we write whole milliseconds exactly, which is what the
  TSDB stores) and ascend within a series;
- the text ends with `# EOF`.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

MetricType = Literal["gauge", "counter", "histogram", "unknown"]

_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_TYPES = ("gauge", "counter", "histogram", "unknown")


@dataclass
class _Family:
    name: str
    type: MetricType
    help: str
    chunks: list[str]  # text of each series, already formatted
    label_sets: set[tuple[tuple[str, str], ...]]


def _escape_label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _label_block(labels: dict[str, str], extra: str = "") -> str:
    """`{a="1",b="2"}` (sorted, so output is deterministic), or "" without labels."""
    parts = [f'{k}="{_escape_label_value(str(v))}"' for k, v in sorted(labels.items())]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _format_values(values: np.ndarray) -> list[str]:
    # repr is the shortest string that round-trips a float64; only non-finite values need
    # the OpenMetrics spelling (NaN, +Inf, -Inf), so patch just those positions.
    out = list(map(repr, values.tolist()))
    bad = np.flatnonzero(~np.isfinite(values))
    for i in bad.tolist():
        v = values[i]
        out[i] = "NaN" if math.isnan(v) else ("+Inf" if v > 0 else "-Inf")
    return out


def _format_timestamps(timestamps: np.ndarray) -> list[str]:
    # The TSDB keeps whole milliseconds. Writing "1700000000.123" would be parsed as a
    # float and scaled by 1000, which can land on ...122; exact decimal text avoids that.
    ms = np.round(timestamps * 1000.0).astype(np.int64)
    sec, frac = np.divmod(ms, 1000)
    if not frac.any():
        return list(map(str, sec.tolist()))
    return [f"{s}.{f:03d}" for s, f in zip(sec.tolist(), frac.tolist(), strict=True)]


def _check_float_column(what: str, arr: np.ndarray, n: int | None = None) -> np.ndarray:
    try:
        out = np.asarray(arr, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{what}: expected numbers, got {e}") from None
    if n is not None and out.shape[0] != n:
        raise ValueError(f"{what}: expected {n} rows (one per timestamp), got {out.shape[0]}")
    return out


class OpenMetricsWriter:
    """Collects series by family and writes one OpenMetrics text file.

    `add` takes one series (a metric name, its labels, aligned timestamp/value
    columns). NaN values are missing points by default (as in `Series`) and are
    not written, so Prometheus sees a gap rather than a NaN sample.
    """

    def __init__(self) -> None:
        self._families: dict[str, _Family] = {}

    # ------------------------------------------------------------------ public
    def add(
        self,
        name: str,
        labels: dict[str, str],
        timestamps: np.ndarray,
        values: np.ndarray,
        *,
        type: MetricType = "gauge",
        help: str = "",
        skip_nan: bool = True,
    ) -> None:
        if type not in _TYPES:
            raise ValueError(f"type: expected one of {', '.join(_TYPES)}, got {type!r}")
        if type == "histogram":
            raise ValueError(f"{name}: histograms take bucket columns; use add_histogram()")
        self._check_name(name)
        self._check_labels(name, labels)
        ts = _check_float_column(f"{name} timestamps", timestamps)
        vals = _check_float_column(f"{name} values", values, len(ts))
        if ts.ndim != 1 or vals.ndim != 1:
            raise ValueError(f"{name}: timestamps and values must be 1-D columns")
        if type == "counter":
            family_name = name.removesuffix("_total")
            sample_name = family_name + "_total"
        else:
            family_name = sample_name = name
        if skip_nan:
            keep = ~np.isnan(vals)
            ts, vals = ts[keep], vals[keep]
        ts, order = self._sorted(sample_name, labels, ts)
        vals = vals[order]
        fam = self._family(family_name, type, help)
        self._claim(fam, sample_name, labels)
        if len(ts) == 0:
            return
        prefix = sample_name + _label_block(labels) + " "
        fam.chunks.append(
            "".join(
                [f"{prefix}{v} {t}\n" for v, t in zip(_format_values(vals), _format_timestamps(ts), strict=True)]
            )
        )

    def add_histogram(
        self,
        name: str,
        labels: dict[str, str],
        timestamps: np.ndarray,
        bucket_bounds: list[float],
        cumulative_counts: np.ndarray,
        sums: np.ndarray,
        counts: np.ndarray,
        *,
        help: str = "",
    ) -> None:
        """One classic histogram series.

        `bucket_bounds` are the finite upper bounds (`le`), ascending; a trailing
        +Inf bound is accepted and dropped, since the +Inf bucket is `counts`.
        `cumulative_counts` is T x len(bounds): per row, the number of observations
        <= each bound, as counters (they never decrease over time unless reset).
        """
        self._check_name(name)
        self._check_labels(name, labels)
        if "le" in labels:
            raise ValueError(f"{name}: the label 'le' is reserved for histogram buckets")
        bounds = _finite_bounds(name, bucket_bounds)
        ts = _check_float_column(f"{name} timestamps", timestamps)
        n = len(ts)
        cum = _bucket_matrix(name, cumulative_counts, n, bounds, len(bucket_bounds))
        sums_ = _check_float_column(f"{name} sums", sums, n)
        counts_ = _check_float_column(f"{name} counts", counts, n)
        full = np.concatenate([cum, counts_[:, None]], axis=1)  # +Inf bucket is the count
        if np.any(np.diff(full, axis=1) < 0):
            row = int(np.flatnonzero(np.any(np.diff(full, axis=1) < 0, axis=1))[0])
            raise ValueError(
                f"{name} cumulative_counts: buckets must not decrease with le and must not exceed "
                f"counts; row {row} (t={ts[row]}) has {full[row].tolist()}"
            )
        ts, order = self._sorted(name, labels, ts)
        fam = self._family(name, "histogram", help)
        self._claim(fam, name, labels)
        if n == 0:
            return
        fam.chunks.append(_histogram_text(name, labels, bounds, ts, full[order], sums_[order]))

    def text(self) -> str:
        parts: list[str] = []
        for fam in self._families.values():
            parts.append(f"# TYPE {fam.name} {fam.type}\n")
            if fam.help:
                parts.append(f"# HELP {fam.name} {_escape_help(fam.help)}\n")
            parts.extend(fam.chunks)
        parts.append("# EOF\n")
        return "".join(parts)

    def write(self, path: Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(self.text(), encoding="utf-8")
        tmp.replace(path)  # a reader never sees half a file

    @property
    def sample_count(self) -> int:
        return sum(c.count("\n") for f in self._families.values() for c in f.chunks)

    # ------------------------------------------------------------------ checks
    @staticmethod
    def _check_name(name: str) -> None:
        if not isinstance(name, str) or not _METRIC_NAME.match(name):
            raise ValueError(
                f"metric name {name!r}: expected letters, digits, '_' or ':' and not starting with a digit"
            )

    @staticmethod
    def _check_labels(name: str, labels: dict[str, str]) -> None:
        for k, v in labels.items():
            if not isinstance(k, str) or not _LABEL_NAME.match(k) or k.startswith("__"):
                raise ValueError(
                    f"{name}: label name {k!r}: expected letters, digits or '_' not starting with "
                    "a digit or '__'"
                )
            if not isinstance(v, str):
                raise ValueError(f"{name}: label {k!r}: expected a string value, got {type(v).__name__}")

    @staticmethod
    def _sorted(name: str, labels: dict[str, str], ts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if ts.ndim != 1:
            raise ValueError(f"{name} timestamps: expected a 1-D column")
        if not np.all(np.isfinite(ts)):
            raise ValueError(f"{name}{_label_block(labels)} timestamps: expected finite epoch seconds")
        order = np.argsort(ts, kind="stable")
        ts = ts[order]
        ms = np.round(ts * 1000.0).astype(np.int64)
        if len(ms) > 1 and np.any(np.diff(ms) == 0):
            i = int(np.flatnonzero(np.diff(ms) == 0)[0])
            raise ValueError(
                f"{name}{_label_block(labels)}: two samples at the same millisecond (t={ts[i]}); "
                "a series holds one value per timestamp"
            )
        return ts, order

    def _family(self, name: str, type: MetricType, help: str) -> _Family:
        fam = self._families.get(name)
        if fam is None:
            fam = self._families[name] = _Family(name, type, help, [], set())
        elif fam.type != type:
            raise ValueError(f"metric family {name!r} is a {fam.type}; cannot add it again as a {type}")
        elif help and not fam.help:
            fam.help = help
        return fam

    @staticmethod
    def _claim(fam: _Family, sample_name: str, labels: dict[str, str]) -> None:
        key = tuple(sorted(labels.items()))
        if key in fam.label_sets:
            raise ValueError(
                f"series {sample_name}{_label_block(labels)} was added twice; add each series once "
                "with all its points"
            )
        fam.label_sets.add(key)


def _finite_bounds(name: str, bucket_bounds: list[float]) -> list[float]:
    """The finite `le` bounds, ascending; a trailing +Inf is dropped (the +Inf bucket is the count)."""
    bounds = [float(b) for b in bucket_bounds]
    if bounds and math.isinf(bounds[-1]) and bounds[-1] > 0:
        bounds = bounds[:-1]
    if any(math.isnan(b) or math.isinf(b) for b in bounds):
        raise ValueError(f"{name} bucket_bounds: expected finite numbers (+Inf only last), got {bucket_bounds}")
    if any(b2 <= b1 for b1, b2 in zip(bounds, bounds[1:], strict=False)):
        raise ValueError(f"{name} bucket_bounds: expected strictly ascending bounds, got {bucket_bounds}")
    return bounds


def _bucket_matrix(name: str, cumulative_counts: np.ndarray, n: int, bounds: list[float], given_bounds: int
                   ) -> np.ndarray:
    """`cumulative_counts` as n timestamps x len(bounds) finite buckets (a flat column is reshaped)."""
    cum = _check_float_column(f"{name} cumulative_counts", cumulative_counts, n)
    if cum.ndim == 1 and cum.size == n * len(bounds):
        cum = cum.reshape(n, len(bounds))
    if cum.shape != (n, len(bounds)):
        if cum.ndim == 2 and cum.shape == (n, len(bounds) + 1) and given_bounds == len(bounds):
            raise ValueError(
                f"{name} cumulative_counts: got one column more than bucket_bounds; pass the "
                "+Inf bucket as `counts`, not as a column"
            )
        raise ValueError(
            f"{name} cumulative_counts: expected shape ({n}, {len(bounds)}) "
            f"(timestamps x finite bounds), got {cum.shape}"
        )
    return cum


def _histogram_text(name: str, labels: dict[str, str], bounds: list[float], ts: np.ndarray, full: np.ndarray,
                    sums: np.ndarray) -> str:
    """One histogram series in time order: per timestamp its `_bucket` samples (`full`: the
    finite buckets then +Inf, which is the count), `_count` and `_sum`."""
    les = [repr(b) for b in bounds] + ["+Inf"]
    le_pairs = ['le="' + le + '"' for le in les]
    bucket_prefixes = [f"{name}_bucket{_label_block(labels, pair)} " for pair in le_pairs]
    block = _label_block(labels)
    count_prefix, sum_prefix = f"{name}_count{block} ", f"{name}_sum{block} "
    ts_s = _format_timestamps(ts)
    # Format column by column (vectorised over time), then interleave per timestamp.
    cols = [
        [f"{p}{v} {t}\n" for v, t in zip(_format_values(full[:, j]), ts_s, strict=True)]
        for j, p in enumerate(bucket_prefixes)
    ]
    cols.append([f"{count_prefix}{v} {t}\n" for v, t in zip(_format_values(full[:, -1]), ts_s, strict=True)])
    cols.append([f"{sum_prefix}{v} {t}\n" for v, t in zip(_format_values(sums), ts_s, strict=True)])
    return "".join(["".join(row) for row in zip(*cols, strict=True)])
