"""Small pandas tables in fitted states, as JSON: column by column, strings as codes.

The log and trace detectors keep row-level tables of their reference (line shapes,
span times): their tests need every value, not a summary. `table_to_dict` keeps the
rows in order and every float exactly (JSON floats round-trip), so a detector scores
the same with a restored state as with the one it fitted.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import pandas as pd

Kind = Literal["float", "bool", "str"]  # "str": text, None for missing


def table_to_dict(df: pd.DataFrame, columns: Mapping[str, Kind]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, kind in columns.items():
        col = df[name]
        if kind == "str":
            codes, uniques = pd.factorize(col, use_na_sentinel=True)
            out[name] = {"values": [str(u) for u in uniques], "codes": codes.tolist()}
        elif kind == "float":
            out[name] = [x if math.isfinite(x) else None for x in col.to_numpy(np.float64).tolist()]
        else:
            out[name] = col.to_numpy(bool).tolist()
    return {"rows": len(df), "columns": out}


def table_from_dict(d: Mapping[str, Any], columns: Mapping[str, Kind], what: str) -> pd.DataFrame:
    """The table `table_to_dict` wrote; `what` names the state in errors."""
    try:
        rows, cols = int(d["rows"]), d["columns"]
        data = {name: _column(cols[name], kind) for name, kind in columns.items()}
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise ValueError(f"{what}: expected a table with columns {list(columns)} ({exc!r})") from exc
    bad = [name for name, v in data.items() if len(v) != rows]
    if bad:
        raise ValueError(f"{what}: columns {bad} do not hold {rows} rows")
    return pd.DataFrame(data)


def _column(v: Any, kind: Kind) -> np.ndarray:
    if kind == "str":
        values = np.array([*map(str, v["values"]), None], dtype=object)  # code -1 -> None
        codes = np.asarray(v["codes"], dtype=np.int64)
        if len(codes) and (codes.min() < -1 or codes.max() >= len(values) - 1):
            raise ValueError("string codes out of range")
        return values[codes] if len(codes) else np.empty(0, dtype=object)
    if kind == "float":
        return np.array(v, dtype=np.float64)  # None -> NaN
    return np.array(v, dtype=bool)
