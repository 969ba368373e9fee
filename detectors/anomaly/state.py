"""What the online anomaly detector remembers: per series a few hundred floats, as JSON.

`SeriesState` is the compiled kernel's memory of one series; `AnomalyState` adds the
onset of the anomalous run under way (a run may continue across cycles) and is what
`OnlineAnomalyDetector.fit` returns and `score` advances. Its `to_dict` is the format
the daemon stores: {"detector": <SeriesState>, "run_onset": <float | null>}.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

# 2: seasonal profiles hold values (not deviations), slots 4/6 their offsets, slot 18 a time
# 3: a histogram of past values (`values`) and its decayed mass (slot 19)
# 4: a log-binned record of past surprise sizes (`excursions`: committed bins, their decayed
#    mass, the length of the episode under way, that episode's bins)
# 5: the series' usual volume (slot 20; 0 until a point comes with one)
# 6: the number of points that came with a volume (slot 21): the usual volume is their
#    running mean, however late the first one came
# 7: the series' usual sampling step (slot 22; 0 until a second point comes) and the time
#    not observed (slot 23: what intervals longer than a few usual steps had beyond that)
STATE_VERSION = 7
# The default size of the excursion memory (AnomalyTuning.exc_bins): a version-3 state is
# carried over with an empty memory of this size.
DEFAULT_EXC_BINS = 32

# scalar state slots (the kernel addresses them by number)
(N, LAST_TS, LEVEL, ERR_L, HWD_LEVEL, ERR_D, HWW_LEVEL, ERR_W, SHORT, MU, VAR,
 MIN, MAX, PEAK, N_D, N_W, FIRST_TS, EXPECTED, PEAK_AT, HIST_MASS, VOLUME, N_VOLUME, STEP, SKIPPED) = range(24)
N_SCALARS = 24


def _enc(a: np.ndarray) -> list[float | None]:
    # NaN (an unseen profile bin) is not JSON: it travels as null
    finite = np.isfinite(a)
    if finite.all():
        return a.tolist()
    out = a.astype(object)
    out[~finite] = None
    return out.tolist()


@dataclass
class SeriesState:
    """Everything the kernel remembers about one series (small, JSON-serialisable)."""

    scalars: np.ndarray  # float64[N_SCALARS]
    daily: np.ndarray  # float64[daily_bins], NaN = bin not seen yet
    weekly: np.ndarray  # float64[weekly_bins]
    values: np.ndarray  # float64[value_bins]: decayed counts of past values over [min, max] seen
    excursions: np.ndarray  # float64[2 exc_bins + 2]: past surprise sizes, total, episode under way

    @property
    def last_timestamp(self) -> float | None:
        t = float(self.scalars[LAST_TS])
        return None if math.isnan(t) else t

    @property
    def points_seen(self) -> int:
        return int(self.scalars[N])

    def to_dict(self) -> dict[str, Any]:
        return {"version": STATE_VERSION, "scalars": _enc(self.scalars),
                "daily": _enc(self.daily), "weekly": _enc(self.weekly), "values": _enc(self.values),
                "excursions": _enc(self.excursions)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SeriesState:
        if isinstance(d, Mapping) and d.get("version") == 3 and isinstance(d.get("scalars"), list):
            # version 3 lacks the excursion memory: it starts empty (no precedents, so
            # nothing is capped until the series shows some) instead of a cold start
            d = {**d, "version": 4, "excursions": [0.0] * (2 * DEFAULT_EXC_BINS + 2)}
        if isinstance(d, Mapping) and d.get("version") == 4 and isinstance(d.get("scalars"), list):
            # version 4 lacks only the usual volume: none known yet, as for a new series
            d = {**d, "version": 5, "scalars": [*d["scalars"], 0.0]}
        if isinstance(d, Mapping) and d.get("version") == 5 and isinstance(d.get("scalars"), list):
            # version 5 moved its usual volume at max(volume_memory, 1/points seen): counting
            # every point as one with a volume keeps that pace
            sc = d["scalars"]
            known = len(sc) > VOLUME and isinstance(sc[VOLUME], (int, float)) and sc[VOLUME] > 0
            d = {**d, "version": 6, "scalars": [*sc, sc[N] if known else 0.0]}
        if isinstance(d, Mapping) and d.get("version") == 6 and isinstance(d.get("scalars"), list):
            # version 6 lacks the usual step (learnt from the next interval, as for a new
            # series) and the time not observed (none: as version 6 counted it)
            d = {**d, "version": STATE_VERSION, "scalars": [*d["scalars"], 0.0, 0.0]}
        if not isinstance(d, Mapping) or d.get("version") != STATE_VERSION:
            raise ValueError(f"anomaly state: expected a dict with version={STATE_VERSION}, "
                             f"got {type(d).__name__} version={getattr(d, 'get', lambda k: None)('version')!r}")

        def dec(key: str) -> np.ndarray:
            v = d.get(key)
            if not isinstance(v, list):
                raise ValueError(f"anomaly state: field {key!r} must be a list of numbers")
            try:
                return np.array(v, dtype=np.float64)  # null -> NaN
            except (TypeError, ValueError) as exc:
                raise ValueError(f"anomaly state: field {key!r} must hold numbers or null") from exc

        scalars = dec("scalars")
        if len(scalars) != N_SCALARS:
            raise ValueError(f"anomaly state: 'scalars' must hold {N_SCALARS} numbers, got {len(scalars)}")
        return cls(scalars, dec("daily"), dec("weekly"), dec("values"), dec("excursions"))


@dataclass
class AnomalyState:
    """The fitted state of the online detector: the series' memory and the run under way."""

    series: SeriesState
    run_onset: float | None = None  # onset of the anomalous run still going at the last point

    def to_dict(self) -> dict[str, Any]:
        return {"detector": self.series.to_dict(), "run_onset": self.run_onset}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AnomalyState:
        if not isinstance(d, Mapping) or "detector" not in d:
            raise ValueError("anomaly state: expected {'detector': {...}, 'run_onset': number | null}")
        onset = d.get("run_onset")
        return cls(SeriesState.from_dict(d["detector"]), None if onset is None else float(onset))
