"""Reading one samples or reference file (parquet or CSV) into a frame, its errors named."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


class SampleFileError(ValueError):
    """A samples/reference file cannot be used; the message names the file and the column."""


def read_table(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    if suffix not in (".parquet", ".pq", ".csv", ".txt"):
        raise SampleFileError(f"{path}: expected a .parquet or .csv file")
    try:  # half written or damaged (ArrowInvalid, ParserError): named, not an internal error
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
        df = pd.read_csv(path)
        wide = _integers_past_float(df)
        return pd.read_csv(path, dtype=dict.fromkeys(wide, str)) if wide else df
    except ValueError as e:
        raise SampleFileError(f"{path}: cannot be read ({type(e).__name__}: {e})") from None


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
