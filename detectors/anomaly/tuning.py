"""The online anomaly detector's tuning: one configuration for every series."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from detectors.anomaly.state import DEFAULT_EXC_BINS, EXPECTED, FIRST_TS, LAST_TS, N_SCALARS, SeriesState
from detectors.records import Direction

_DIRECTION_CODE = {Direction.BOTH: 0, Direction.UP: 1, Direction.DOWN: -1}


@dataclass(frozen=True)
class AnomalyTuning:
    """Plain values, one configuration for all series (the daemon's is the default).

    alpha_level        EWMA weight of the level model (how fast it follows drifts).
    alpha_season       weight of a new observation in its time-of-day / time-of-week bin, per
                       period (a point covering part of a bin's width weighs that share).
    alpha_err          EW weight of the models' absolute-error trackers (noise scale).
    short_weight       EW weight of the short average of surprises.
    long_weight        EW weight of the long-run mean/spread of that average.
    warmup_points      points seen before any non-zero score.
    spatial_tolerance  fraction of the seen range a value must exceed it by to be "new".
    spatial_min_z      forecast surprise |z| a value beyond the seen range needs to score 1.
    gap_min_z          forecast surprise |z| a value inside the range needs before its
                       neighbourhood's rarity is judged.
    refractory_seconds for this long after an episode's peak, a score not stronger is damped.
    refractory_damp    factor applied to such a score.
    value_bins         resolution of the histogram of past values over the range seen.
    gap_neighbours     bins either side counted as the value's neighbourhood.
    gap_memory         per-point forgetting of that histogram (1/5000: mass of ~5000 points).
    gap_scale          a neighbourhood holding a fraction m of the mass scores -log10(m)/gap_scale.
    gap_max_points     rarity is floored at 1/min(points seen, this): scores stay below 1.
    daily_bins, weekly_bins  profile resolution.
    exc_min            smallest short surprise average (in sigmas) the excursion memory judges;
                       smaller surprises are left to the Gaussian likelihood.
    exc_record         smallest short surprise average the memory records (an episode lasts
                       while the average stays at or above it).
    exc_max, exc_bins  log-spaced bins of that memory from exc_record to exc_max.
    exc_decay          per-point forgetting of the memory (1/5000: the last ~5000 points).
    exc_kappa          a past surprise counts as "as large" when it reached kappa * this one.
    exc_max_run        an episode longer than this many points joins the record anyway.
    exc_scale          likelihood cap: -log10(empirical rate) / exc_scale.
    exc_gap_scale      value-gap cap: -log10(empirical rate) / exc_gap_scale.
    volume_memory      per-point EW weight of the series' usual volume (requests behind a
                       point of a ratio or per-request statistic, when the caller gives it).
    volume_factor_max  a point's band is scaled by sqrt(usual volume / its volume), within
                       [1 / this, this].
    cover_steps        an interval counts as observed time up to this many usual sampling
                       steps: the seasonal models are judged (and their errors tracked) once the
                       series has been observed for a day / a week, not merely existed that long.
    """

    alpha_level: float = 0.05
    alpha_season: float = 0.3
    alpha_err: float = 0.01
    short_weight: float = 0.3
    long_weight: float = 0.0005
    warmup_points: int = 150
    spatial_tolerance: float = 0.05
    spatial_floor: float = 1.0
    likelihood_floor: float = 0.0
    spatial_min_z: float = 3.0
    gap_min_z: float = 1.5
    refractory_seconds: float = 120000.0
    refractory_damp: float = 0.5
    refractory_margin: float = 0.1
    value_bins: int = 64
    gap_neighbours: int = 1
    gap_memory: float = 0.0002
    gap_scale: float = 4.0
    gap_max_points: float = 2000.0
    daily_bins: int = 144
    weekly_bins: int = 168
    min_scale_rel: float = 1e-3
    min_scale_abs: float = 1e-9
    exc_min: float = 5.0
    exc_record: float = 2.0
    exc_max: float = 50.0
    exc_bins: int = DEFAULT_EXC_BINS
    exc_decay: float = 0.0002
    exc_kappa: float = 0.8
    exc_max_run: float = 100.0
    exc_scale: float = 5.0
    exc_gap_scale: float = 2.25
    volume_memory: float = 0.001
    volume_factor_max: float = 5.0
    cover_steps: float = 3.0

    def new_series_state(self) -> SeriesState:
        scalars = np.zeros(N_SCALARS)
        scalars[LAST_TS] = np.nan
        scalars[FIRST_TS] = np.nan
        scalars[EXPECTED] = np.nan
        return SeriesState(scalars, np.full(self.daily_bins, np.nan), np.full(self.weekly_bins, np.nan),
                           np.zeros(self.value_bins), np.zeros(2 * self.exc_bins + 2))

    def check(self, state: SeriesState) -> None:
        """A state made under other profile sizes cannot be continued."""
        if (len(state.daily) != self.daily_bins or len(state.weekly) != self.weekly_bins
                or len(state.values) != self.value_bins or len(state.excursions) != 2 * self.exc_bins + 2):
            raise ValueError("anomaly state: profile sizes do not match this detector's "
                             "daily_bins/weekly_bins/value_bins/exc_bins")

    def kernel_params(self, direction: Direction) -> np.ndarray:
        return np.array([self.alpha_level, self.alpha_season, self.alpha_err, self.short_weight,
                         self.long_weight, float(self.warmup_points), self.spatial_tolerance,
                         self.refractory_seconds, self.refractory_damp, self.min_scale_rel,
                         self.min_scale_abs, float(_DIRECTION_CODE[Direction(direction)]),
                         self.refractory_margin, self.spatial_floor,
                         self.likelihood_floor, self.spatial_min_z, float(self.gap_neighbours),
                         self.gap_memory, self.gap_scale, self.gap_max_points,
                         self.exc_min, self.exc_max, self.exc_decay, self.exc_kappa,
                         self.exc_max_run, self.exc_scale, self.exc_gap_scale, self.exc_record,
                         self.gap_min_z, self.volume_memory, self.volume_factor_max, self.cover_steps])
