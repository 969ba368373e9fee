"""Each model's detector state at rest: one row per series (or fitted baseline), written
only when its bytes change.

A cycle carries the state as a dict {key: value}: per scored series the online anomaly
detector's `AnomalyState.to_dict()` (464 floats), and for logs and traces their fitted
baselines (JSON). Rewritten whole as JSON every cycle that was 24 KB per model with three
hours of history and about 60 KB once the seasonal profiles fill, most of it unchanged.
Here:

- an anomaly state is packed as float64 arrays (zlib), anything else as zlib'd JSON, each
  behind a one-byte format marker (`A`, `J`; profiles `P`);
- a row whose bytes did not change is not written (a series with no new point);
- an anomaly state's seasonal profiles (daily and weekly bins: 312 of its 464 floats) move
  in one or two bins a point, so they live in a row of their own (`part` "profile") that is
  rewritten only when more than `PATCH_LIMIT` bins differ from it; until then the bins that
  moved ride in the state row as a patch.

Values read back exactly as the JSON held them (non-finite floats as None, as
`AnomalyState.to_dict` writes them). Stores from before keep the whole dict as JSON in
`model_state.detector_state`: it is read from there while this table holds nothing for the
model, and the first write moves it here and empties that column.
"""
from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import LargeBinary, String, Text, delete, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from monitor.store.tables import Base

STATE, PROFILE = "state", "profile"
ANOMALY, JSON_VALUE, PROFILE_MARK = b"A", b"J", b"P"
# Bins of the seasonal profiles that may differ from the stored profile row before it is
# rewritten: a patch entry is 10 bytes, the row about 2.5 KB; at one point a minute 32
# distinct bins are some 4 hours of a day's 10-minute and a week's 1-hour bins.
PATCH_LIMIT = 32
_LEVEL = 6  # small rows, written often and read once a cycle: zlib's default
_ANOMALY_KEYS = frozenset({"detector", "run_onset"})
_SERIES_KEYS = frozenset({"version", "scalars", "daily", "weekly", "values", "excursions"})
_HEAD = struct.Struct("<HHHHHHd")  # state version, scalars, daily, weekly, values, excursions, run onset
_PROFILE_HEAD = struct.Struct("<HH")  # daily, weekly bins
_PATCH_HEAD = struct.Struct("<H")
_MAX = 2**16  # counts and indices are 16-bit
_FLOAT_OR_NONE = frozenset({float, type(None)})  # an anomaly state's arrays as to_dict writes them (types, exactly)


class DetectorStateRow(Base):
    __tablename__ = "detector_states"
    model: Mapped[str] = mapped_column(String(100), primary_key=True)
    key: Mapped[str] = mapped_column(Text, primary_key=True)  # a series (gather.anomaly_key), or "@logs", "@traces"
    part: Mapped[str] = mapped_column(String(10), primary_key=True)  # state | profile
    data: Mapped[bytes] = mapped_column(LargeBinary)  # one-byte format marker, then zlib


@dataclass(frozen=True)
class _Anomaly:
    """An anomaly state taken apart: the arrays that move every point, and the profiles."""

    version: int
    run_onset: float | None
    scalars: np.ndarray
    values: np.ndarray
    excursions: np.ndarray
    n_daily: int
    profile: np.ndarray  # daily bins then weekly bins


def load(s: Session, model: str, legacy: Mapping[str, Any] | None) -> dict[str, Any]:
    """The model's detector state; `legacy` is model_state.detector_state, used when this
    table holds no row for the model (a store written before it)."""
    q = select(DetectorStateRow).where(DetectorStateRow.model == model).order_by(DetectorStateRow.key)
    rows = {(r.key, r.part): r.data for r in s.scalars(q)}
    return decode_rows(rows) if rows else dict(legacy or {})


def decode_rows(rows: Mapping[tuple[str, str], bytes]) -> dict[str, Any]:
    """{(key, part): data} of one model -> its state dict (also what a downgrade writes back as JSON)."""
    return {key: _decode(data, rows.get((key, PROFILE))) for (key, part), data in rows.items() if part == STATE}


def save(s: Session, model: str, state: Mapping[str, Any]) -> int:
    """Make the stored state equal `state`, writing only the rows whose bytes change; the
    number of rows written or deleted."""
    have = {(r.key, r.part): r for r in s.scalars(select(DetectorStateRow).where(DetectorStateRow.model == model))}
    want: dict[tuple[str, str], bytes] = {}
    for key, value in state.items():
        old_profile = have.get((key, PROFILE))
        want.update({(key, part): data for part, data in
                     _encode(value, old_profile.data if old_profile else None).items()})
    changed = 0
    # State rows first: a new model's rows are inserted together (SQLite keeps rows in
    # insertion order), so a cycle's updates dirty a page or two, not every profile's page.
    for k, data in sorted(want.items(), key=lambda kv: kv[0][1] == PROFILE):
        row = have.get(k)
        if row is None:
            s.add(DetectorStateRow(model=model, key=k[0], part=k[1], data=data))
        elif row.data != data:
            row.data = data
        else:
            continue
        changed += 1
    gone = [k for k in have if k not in want]
    for key, part in gone:
        s.execute(delete(DetectorStateRow).where(DetectorStateRow.model == model, DetectorStateRow.key == key,
                                                 DetectorStateRow.part == part))
    return changed + len(gone)


# ------------------------------------------------------------------ encoding
def _encode(value: Any, old_profile: bytes | None) -> dict[str, bytes]:
    """{part: bytes} for one key: a state row, and for an anomaly state its profile row
    (the old one unless too many bins moved)."""
    a = _as_anomaly(value)
    if a is None:
        return {STATE: JSON_VALUE + zlib.compress(json.dumps(value, separators=(",", ":")).encode(), _LEVEL)}
    base = _decode_profile(old_profile) if old_profile is not None else None
    if base is not None and base[0] == a.n_daily and len(base[1]) == len(a.profile):
        moved = np.flatnonzero(~((base[1] == a.profile) | (np.isnan(base[1]) & np.isnan(a.profile))))
        if len(moved) <= PATCH_LIMIT:
            assert old_profile is not None
            return {STATE: _pack_state(a, moved), PROFILE: old_profile}
    return {STATE: _pack_state(a, np.empty(0, dtype=np.intp)), PROFILE: _pack_profile(a)}


def _as_anomaly(value: Any) -> _Anomaly | None:
    """`value` as an anomaly state when it has exactly AnomalyState.to_dict()'s shape."""
    if not isinstance(value, Mapping) or set(value) != _ANOMALY_KEYS:
        return None
    d, onset = value["detector"], value["run_onset"]
    if not isinstance(d, Mapping) or set(d) != _SERIES_KEYS or type(d["version"]) is not int \
            or not 0 <= d["version"] < _MAX:
        return None
    if onset is not None and type(onset) is not float:
        return None
    arrays = []
    for name in ("scalars", "values", "excursions", "daily", "weekly"):
        v = d[name]
        if not isinstance(v, list) or len(v) >= _MAX or not set(map(type, v)) <= _FLOAT_OR_NONE:
            return None  # ints or anything else: JSON keeps them exactly as they are
        arrays.append(np.array(v, dtype=np.float64))
    scalars, values, excursions, daily, weekly = arrays
    if len(daily) + len(weekly) >= _MAX:
        return None  # patch indices are 16-bit
    return _Anomaly(d["version"], onset, scalars, values, excursions, len(daily), np.concatenate([daily, weekly]))


def _pack_state(a: _Anomaly, moved: np.ndarray) -> bytes:
    head = _HEAD.pack(a.version, len(a.scalars), a.n_daily, len(a.profile) - a.n_daily, len(a.values),
                      len(a.excursions), np.nan if a.run_onset is None else a.run_onset)
    patch = (_PATCH_HEAD.pack(len(moved)) + moved.astype("<u2").tobytes()
             + a.profile[moved].astype("<f8").tobytes())
    body = b"".join([head, a.scalars.astype("<f8").tobytes(), a.values.astype("<f8").tobytes(),
                     a.excursions.astype("<f8").tobytes(), patch])
    return ANOMALY + zlib.compress(body, _LEVEL)


def _pack_profile(a: _Anomaly) -> bytes:
    body = _PROFILE_HEAD.pack(a.n_daily, len(a.profile) - a.n_daily) + a.profile.astype("<f8").tobytes()
    return PROFILE_MARK + zlib.compress(body, _LEVEL)


def _decode_profile(data: bytes) -> tuple[int, np.ndarray] | None:
    if data[:1] != PROFILE_MARK:
        return None
    body = zlib.decompress(data[1:])
    n_daily, n_weekly = _PROFILE_HEAD.unpack_from(body)
    return n_daily, np.frombuffer(body, "<f8", n_daily + n_weekly, _PROFILE_HEAD.size).astype(np.float64)


def _decode(data: bytes, profile: bytes | None) -> Any:
    mark = data[:1]
    if mark == JSON_VALUE:
        return json.loads(zlib.decompress(data[1:]))
    if mark != ANOMALY:
        raise ValueError(f"detector state: unknown format marker {mark!r}")
    if profile is None:
        raise ValueError("detector state: an anomaly state without its profile row")
    base = _decode_profile(profile)
    if base is None:
        raise ValueError(f"detector state: unknown profile format marker {profile[:1]!r}")
    body = zlib.decompress(data[1:])
    version, n_s, n_d, n_w, n_v, n_e, onset = _HEAD.unpack_from(body)
    at = _HEAD.size

    def take(n: int, dtype: str) -> np.ndarray:
        nonlocal at
        out = np.frombuffer(body, dtype, n, at)
        at += n * np.dtype(dtype).itemsize
        return out

    scalars, values, excursions = take(n_s, "<f8"), take(n_v, "<f8"), take(n_e, "<f8")
    (n_patch,) = _PATCH_HEAD.unpack_from(body, at)
    at += _PATCH_HEAD.size
    idx, vals = take(n_patch, "<u2"), take(n_patch, "<f8")
    prof = base[1].copy()
    prof[idx.astype(np.intp)] = vals
    if base[0] != n_d or len(prof) != n_d + n_w:
        raise ValueError("detector state: the profile row does not match its state row")
    detector = {"version": version, "scalars": _enc(scalars), "daily": _enc(prof[:n_d]),
                "weekly": _enc(prof[n_d:]), "values": _enc(values), "excursions": _enc(excursions)}
    return {"detector": detector, "run_onset": None if np.isnan(onset) else float(onset)}


def _enc(a: np.ndarray) -> list[float | None]:
    """As AnomalyState.to_dict writes arrays: non-finite values (an unseen bin) as None."""
    out: list[float | None] = a.astype(np.float64).tolist()
    for i in np.flatnonzero(~np.isfinite(a)).tolist():  # by index: a profile is mostly finite, or mostly not
        out[i] = None
    return out
