"""Online metric anomaly detection: one point at a time, the past only, one configuration.

Every Prometheus series Vigil watches (latency, error rate, traffic, KPIs, GPU
utilisation) goes through `OnlineAnomalyDetector`. Per point it

1. forecasts the value with three small models that run side by side: a level
   (EWMA), a daily and a weekly seasonal model (a profile of values binned by time of
   day / week, so gaps and irregular sampling keep their phase, plus a slow offset for
   level changes; robust updates, clipped at 3 sigma, so an anomaly that lasts hours is
   not learnt as normal while it lasts). The model whose
   recent absolute error is lowest gives the expected value and the noise scale (a
   robust EW mean absolute error, so noise that changes over time changes the band);
2. turns the forecast error into a surprise `z` and asks how unusual the recent
   surprise is *for this series* (NAB-style anomaly likelihood: a short average of
   `|z|` against the long-run mean and spread of that average), so one threshold
   serves calm and noisy series alike;
3. adds two spatial checks on the value itself, both only when the forecast is
   surprised too: a value beyond everything seen so far (by a tolerance of the range)
   scores 1 when |z| >= 3 (flat lines that move, new extremes, counter resets); a value
   inside the range but where the series has (almost) never been scores, once |z| >= 1.5
   (a forecast that follows a slow drift into a new band under-states the surprise, so
   the value's place carries its own evidence; the score stays below 1), by how rare
   that neighbourhood is in a slowly forgetting histogram of past values: `-log10(mass)
   / gap_scale`, the mass floored at one point in min(points seen, gap_max_points), so
   it tops out below 1 (a gap is weaker evidence than a new extreme) and a short
   history cannot claim great rarity (a level between two usual ones, a half-height
   spike, a flat line at a value only ever crossed in passing);
4. maps the combined tail probability `p` to a score in [0, 1]: `-log10(p) / 10`,
   so 0.5 means "one in 100,000", and damps a score that is not stronger than one
   already given in the recent past (one finding per episode, not a storm);
5. checks a big surprise against the series' own record (excursion memory): a slowly
   forgetting, log-binned count of past points whose short surprise average reached a
   given size. Once earlier episodes produced surprises at least `exc_kappa` times this
   one's size, their empirical rate `r` caps the score: the likelihood at
   `-log10(r) / exc_scale`, the value-gap score at `-log10(r) / exc_gap_scale` (a spike
   that lands in a rarely visited band is routine when spikes that big take a few
   percent of the series' time). A new extreme is never capped. The points of the
   episode under way are held apart and join the record only when it ends (or after
   `exc_max_run` points, so a series that is never calm still learns): a burst is
   judged by earlier bursts, never by its own first points. Spikes and bursts a series
   keeps producing stop paging; a surprise bigger than any before, or the first of its
   kind, still do.

State per series is a few hundred floats (`SeriesState`), JSON-serialisable, so the
daemon restarts without a cold start. The per-point recursion is compiled with numba
(it is sequential by nature; numpy cannot express it without a Python loop).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from detectors.records import Direction, Finding, FindingKind, Series

try:  # compiled kernel; the pure-Python fallback gives the same numbers, only slower
    from numba import njit
except ImportError:  # pragma: no cover - numba is a runtime dependency
    def njit(*args: Any, **kwargs: Any):  # type: ignore[no-redef]
        if args and callable(args[0]):
            return args[0]
        return lambda f: f

DAY = 86400.0
WEEK = 7 * DAY
# 2: seasonal profiles hold values (not deviations), slots 4/6 their offsets, slot 18 a time
# 3: a histogram of past values (`values`) and its decayed mass (slot 19)
# 4: a log-binned record of past surprise sizes (`excursions`: committed bins, their decayed
#    mass, the length of the episode under way, that episode's bins)
STATE_VERSION = 4

# scalar state slots
_N, _LAST_TS, _LEVEL, _ERR_L, _HWD_LEVEL, _ERR_D, _HWW_LEVEL, _ERR_W, _SHORT, _MU, _VAR, \
    _MIN, _MAX, _PEAK, _N_D, _N_W, _FIRST_TS, _EXPECTED, _PEAK_AT, _HIST_MASS = range(20)
_N_SCALARS = 20

_DIRECTION_CODE = {Direction.BOTH: 0, Direction.UP: 1, Direction.DOWN: -1}


@dataclass
class SeriesState:
    """Everything the detector remembers about one series (small, JSON-serialisable)."""

    scalars: np.ndarray  # float64[_N_SCALARS]
    daily: np.ndarray  # float64[daily_bins], NaN = bin not seen yet
    weekly: np.ndarray  # float64[weekly_bins]
    values: np.ndarray  # float64[value_bins]: decayed counts of past values over [min, max] seen
    excursions: np.ndarray  # float64[2 exc_bins + 2]: past surprise sizes, total, episode under way

    @property
    def last_timestamp(self) -> float | None:
        t = float(self.scalars[_LAST_TS])
        return None if math.isnan(t) else t

    @property
    def points_seen(self) -> int:
        return int(self.scalars[_N])

    def to_dict(self) -> dict[str, Any]:
        def enc(a: np.ndarray) -> list[float | None]:
            # NaN (an unseen profile bin) is not JSON: it travels as null
            return np.where(np.isfinite(a), a, None).tolist()

        return {"version": STATE_VERSION, "scalars": enc(self.scalars),
                "daily": enc(self.daily), "weekly": enc(self.weekly), "values": enc(self.values),
                "excursions": enc(self.excursions)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SeriesState":
        if isinstance(d, dict) and d.get("version") == 3 and isinstance(d.get("scalars"), list):
            # version 3 lacks only the excursion memory: it starts empty (no precedents, so
            # nothing is capped until the series shows some) instead of a cold start
            d = {**d, "version": STATE_VERSION,
                 "excursions": [0.0] * (2 * OnlineAnomalyDetector.exc_bins + 2)}
        if not isinstance(d, dict) or d.get("version") != STATE_VERSION:
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
        if len(scalars) != _N_SCALARS:
            raise ValueError(f"anomaly state: 'scalars' must hold {_N_SCALARS} numbers, got {len(scalars)}")
        return cls(scalars, dec("daily"), dec("weekly"), dec("values"), dec("excursions"))


@dataclass(frozen=True)
class PointDetail:
    """Per-point outputs besides the score: what the detector expected and its band."""

    expected: np.ndarray
    scale: np.ndarray  # one standard deviation of the expected noise


@dataclass(frozen=True)
class OnlineAnomalyDetector:
    """Streaming anomaly scorer; parameters are plain values, one configuration for all series.

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
    exc_bins: int = 32
    exc_decay: float = 0.0002
    exc_kappa: float = 0.8
    exc_max_run: float = 100.0
    exc_scale: float = 5.0
    exc_gap_scale: float = 2.25

    def new_state(self) -> SeriesState:
        scalars = np.zeros(_N_SCALARS)
        scalars[_LAST_TS] = np.nan
        scalars[_FIRST_TS] = np.nan
        scalars[_EXPECTED] = np.nan
        return SeriesState(scalars, np.full(self.daily_bins, np.nan), np.full(self.weekly_bins, np.nan),
                           np.zeros(self.value_bins), np.zeros(2 * self.exc_bins + 2))

    def _params(self, direction: Direction) -> np.ndarray:
        return np.array([self.alpha_level, self.alpha_season, self.alpha_err, self.short_weight,
                         self.long_weight, float(self.warmup_points), self.spatial_tolerance,
                         self.refractory_seconds, self.refractory_damp, self.min_scale_rel,
                         self.min_scale_abs, float(_DIRECTION_CODE[Direction(direction)]),
                         self.refractory_margin, self.spatial_floor,
                         self.likelihood_floor, self.spatial_min_z, float(self.gap_neighbours),
                         self.gap_memory, self.gap_scale, self.gap_max_points,
                         self.exc_min, self.exc_max, self.exc_decay, self.exc_kappa,
                         self.exc_max_run, self.exc_scale, self.exc_gap_scale, self.exc_record,
                         self.gap_min_z])

    def score(self, state: SeriesState, timestamps: np.ndarray, values: np.ndarray,
              direction: Direction = Direction.BOTH) -> np.ndarray:
        """Scores in [0, 1] for the points, in order; updates `state` in place.

        A NaN value is a missing point: score 0, state untouched. Points not newer than
        the state's last timestamp are stale (already seen): score 0, state untouched.
        """
        return self.score_detail(state, timestamps, values, direction)[0]

    def score_detail(self, state: SeriesState, timestamps: np.ndarray, values: np.ndarray,
                     direction: Direction = Direction.BOTH) -> tuple[np.ndarray, PointDetail]:
        ts = np.ascontiguousarray(timestamps, dtype=np.float64)
        xs = np.ascontiguousarray(values, dtype=np.float64)
        if ts.shape != xs.shape or ts.ndim != 1:
            raise ValueError(f"timestamps {ts.shape} and values {xs.shape} must be 1-D and equal length")
        if (len(state.daily) != self.daily_bins or len(state.weekly) != self.weekly_bins
                or len(state.values) != self.value_bins or len(state.excursions) != 2 * self.exc_bins + 2):
            raise ValueError("anomaly state: profile sizes do not match this detector's "
                             "daily_bins/weekly_bins/value_bins/exc_bins")
        out = np.zeros(len(xs))
        expected = np.full(len(xs), np.nan)
        scale = np.full(len(xs), np.nan)
        _kernel(self._params(direction), state.scalars, state.daily, state.weekly, state.values,
                ts, xs, out, expected, scale, state.excursions)
        return out, PointDetail(expected, scale)


@njit(cache=True)
def _log10_tail(u: float) -> float:
    """log10 of the upper normal tail Q(u), accurate far into the tail."""
    if u < 5.0:
        return math.log10(max(0.5 * math.erfc(u / math.sqrt(2.0)), 1e-300))
    # Mills ratio asymptotic: Q(u) ~ phi(u)/u (1 - 1/u^2)
    return (-0.5 * u * u - math.log(u * math.sqrt(2.0 * math.pi)) + math.log(1.0 - 1.0 / (u * u))) / math.log(10.0)


@njit(cache=True)
def _sd(mae: float, floor: float) -> float:
    """A model's noise scale: its mean absolute error as a Gaussian sd, plus the floor."""
    return 1.2533 * mae + floor


@njit(cache=True)
def _track_error(mae: float, count: float, err: float, a_err: float, floor: float) -> float:
    """The model's mean absolute error after one more error: a running mean until the EW
    weight takes over, each error clipped at 5 sigma so one spike does not widen the band."""
    if count == 1.0:
        return abs(err)
    return mae + max(a_err, 1.0 / count) * (min(abs(err), 5.0 * _sd(mae, floor)) - mae)


@njit(cache=True)
def _size_pos(size: float, lowest: float, span: float, nbins: int) -> float:
    """Fractional bin of a surprise size in the excursion memory's log-spaced bins."""
    return math.log(size / lowest) / span * nbins if size > lowest else 0.0


@njit(cache=True)
def _add_value(hist, st, x, decay):
    """Forget a little, widen the bins if `x` extends the range (moving each old bin's
    mass to the new bin holding its centre), then count `x`."""
    nh = hist.shape[0]
    lo, hi = st[11], st[12]
    nlo, nhi = min(lo, x), max(hi, x)
    if nlo < lo or nhi > hi:
        moved = np.zeros(nh)
        w_new = (nhi - nlo) / nh
        for k in range(nh):
            if hist[k] > 0.0:
                centre = lo + (k + 0.5) * (hi - lo) / nh  # a degenerate range: its one value
                moved[min(int((centre - nlo) / w_new), nh - 1)] += hist[k]
        hist[:] = moved
    for k in range(nh):
        hist[k] *= 1.0 - decay
    st[19] = st[19] * (1.0 - decay) + 1.0
    if nhi > nlo:
        hist[min(int((x - nlo) / (nhi - nlo) * nh), nh - 1)] += 1.0
    else:
        hist[0] += 1.0


@njit(cache=True)
def _kernel(p, st, daily, weekly, hist, ts, xs, out, expected_out, scale_out, exc):  # noqa: C901 - one recursion
    a_level, a_season, a_err, w_short, w_long = p[0], p[1], p[2], p[3], p[4]
    warmup, tol, r_hold, r_damp, min_rel, min_abs, dcode = p[5], p[6], p[7], p[8], p[9], p[10], p[11]
    r_margin = p[12]
    sp_floor = p[13]
    lik_floor = p[14]
    sp_min_z = p[15]
    g_nb, g_decay, g_scale, g_max_n = int(p[16]), p[17], p[18], p[19]
    e_min, e_max, e_decay, e_kappa, e_maxrun, e_scale, e_gscale = p[20], p[21], p[22], p[23], p[24], p[25], p[26]
    e_rec = p[27]
    g_min_z = p[28]
    # excursions: [0, ne) committed bins, ne their decayed mass, ne + 1 the length of the
    # episode under way, [ne + 2, 2 ne + 2) its bins
    ne = (exc.shape[0] - 2) // 2
    e_span = math.log(e_max / e_rec)
    nh = hist.shape[0]
    nd = daily.shape[0]
    nw = weekly.shape[0]
    for i in range(xs.shape[0]):
        x = xs[i]
        t = ts[i]
        if math.isnan(x) or math.isnan(t):
            continue
        if not math.isnan(st[1]) and t <= st[1]:
            continue  # stale or duplicate point: already in the state
        bd = int((t % 86400.0) / 86400.0 * nd) % nd
        bw = int((t % 604800.0) / 604800.0 * nw) % nw
        if st[0] == 0.0:
            st[2] = x
            st[4] = 0.0
            st[6] = 0.0
            st[11] = x
            st[12] = x
            st[16] = t
            daily[bd] = x
            weekly[bw] = x
            st[0] = 1.0
            st[1] = t
            st[17] = x
            hist[0] = 1.0  # a degenerate range: all mass at its one value (bin 0 of [x, x])
            st[19] = 1.0
            expected_out[i] = x
            scale_out[i] = 0.0
            continue

        # --- forecasts of the three models
        pl = st[2]
        sd = daily[bd]
        pd = st[2] if math.isnan(sd) else sd + st[4]
        sw = weekly[bw]
        pw = st[2] if math.isnan(sw) else sw + st[6]
        el = x - pl
        ed = x - pd
        ew = x - pw
        # the model with the lowest recent error wins; seasonal ones only once they have
        # covered a full period of bins (error trackers start counting then)
        best = pl
        err = st[3]
        daily_ready = (t - st[16]) >= 86400.0 and st[14] > 50.0
        weekly_ready = (t - st[16]) >= 604800.0 and st[15] > 50.0
        if daily_ready and st[5] < err:
            best = pd
            err = st[5]
        if weekly_ready and st[7] < err:
            best = pw
            err = st[7]
        floor = min_rel * abs(st[2]) + min_abs
        sigma = _sd(err, floor)
        z = (x - best) / sigma
        if dcode > 0.5:
            z = max(z, 0.0)
        elif dcode < -0.5:
            z = max(-z, 0.0)
        else:
            z = abs(z)
        z = min(z, 50.0)

        # --- calibration: the short average of surprises against its own long-run spread
        short = st[8] + w_short * (z - st[8])
        mu = st[9]
        var = st[10]
        sd_long = math.sqrt(var) + lik_floor * mu + 1e-3
        u = (short - mu) / sd_long
        # two-sided-style p = 2 Q(u), so an unremarkable point (u <= 0) scores exactly 0
        l10 = min(_log10_tail(u) + 0.30103, 0.0) if u > 0.0 else 0.0

        # --- spatial: a value beyond everything seen (by a fraction of the range)
        rng = st[12] - st[11]
        sp = 0.0
        if st[0] >= warmup:
            hi = st[12] + tol * rng
            lo = st[11] - tol * rng
            if rng > 0.0 and z >= sp_min_z and ((x > hi and dcode >= -0.5) or (x < lo and dcode <= 0.5)):
                excess = (x - hi) if x > hi else (lo - x)
                sp = sp_floor + (1.0 - sp_floor) * min(excess / rng, 1.0)
            elif rng > 0.0 and z >= g_min_z and st[11] <= x <= st[12]:
                # inside the range: how much of the past lies in this value's neighbourhood
                b = min(int((x - st[11]) / rng * nh), nh - 1)
                mass = 0.0
                for k in range(max(0, b - g_nb), min(nh, b + g_nb + 1)):
                    mass += hist[k]
                rare = max(mass / st[19], 1.0 / min(st[0], g_max_n))
                sp = max(-math.log10(rare) / g_scale, 0.0)

        # excursion memory: how often did earlier episodes bring this series' short surprise
        # average to at least kappa times its size now? Once they have, that rate caps the score
        l10e = 0.0
        if short >= e_min and exc[ne] > 0.0:
            # bins above kappa * short count whole, the bin holding it by the share above it
            zq = short * e_kappa
            pos = _size_pos(zq, e_rec, e_span, ne)
            b0 = min(int(pos), ne - 1)
            c = exc[b0] * max(0.0, 1.0 - (pos - b0))
            for k in range(b0 + 1, ne):
                c += exc[k]
            if c > 0.0:
                l10e = math.log10(min(c / exc[ne], 1.0))
        score = 0.0
        if st[0] >= warmup:
            score = min(-l10 / 10.0, 1.0) + 0.0  # + 0.0: never a negative zero
            if l10e < 0.0:
                score = min(score, -l10e / e_scale)
                if sp < 1.0:  # a new extreme is never routine
                    sp = min(sp, -l10e / e_gscale)
            score = max(score, sp)
        # within the hold time after an episode's peak, a score not clearly stronger is the
        # same episode (or its echo): damped, so one event makes one finding
        if (t - st[18]) < r_hold and score <= st[13] + r_margin:
            st[13] = max(st[13], score)
            score = score * r_damp
        else:
            st[13] = score
            st[18] = t
        out[i] = score
        expected_out[i] = best
        scale_out[i] = sigma

        # --- updates (after scoring: the point never explains itself)
        # running means until the EW weights take over: no start-up bias towards zero
        n_now = st[0]
        wl = max(w_long, 1.0 / n_now)
        st[8] = short
        st[9] = mu + wl * (short - mu)
        st[10] = (1.0 - wl) * (var + wl * (short - mu) * (short - mu))
        # absolute errors are clipped at 5 sigma before they update the noise scale, and the
        # level moves by at most 3 sigma per point: one spike neither widens the band nor
        # drags the level (a real shift is still absorbed within tens of points)
        st[3] = _track_error(st[3], n_now, el, a_err, floor)
        if daily_ready or (t - st[16]) >= 86400.0:
            st[14] += 1.0
            st[5] = _track_error(st[5], st[14], ed, a_err, floor)
        if weekly_ready or (t - st[16]) >= 604800.0:
            st[15] += 1.0
            st[7] = _track_error(st[7], st[15], ew, a_err, floor)
        step = 3.0 * sigma
        st[2] = pl + a_level * max(-step, min(step, el))
        # Holt-Winters additive: level from the deseasonalised value, profile from the de-levelled one
        # seasonal models: a profile of absolute values per time-of-day (time-of-week) bin plus
        # a slowly moving offset for level changes. Unlike Holt-Winters' deseasonalised level,
        # the profile is right from the first period on (no level that first learns the
        # cycle and then hands it over). Both move by at most 3 sigma of their model per
        # point, once its error tracker runs: a missing daily peak or a flat stretch must not
        # become the profile within the hour it lasts.
        cd = 3.0 * _sd(st[5], floor) if st[14] > 50.0 else math.inf
        cw = 3.0 * _sd(st[7], floor) if st[15] > 50.0 else math.inf
        # a bin is visited by every point falling in it: an update weighs the share of the
        # bin's width the point covers, so a bin learns once per period at any sampling rate
        # (else twelve 5-minute points rewrite an hourly bin within the hour)
        gap = t - st[1]
        a_d = a_season * min(1.0, gap / (86400.0 / nd))
        a_w = a_season * min(1.0, gap / (604800.0 / nw))
        if math.isnan(sd):
            daily[bd] = x - st[4]
        else:
            r = max(-cd, min(cd, ed))
            daily[bd] = sd + a_d * r
            st[4] += a_level * r
        if math.isnan(sw):
            weekly[bw] = x - st[6]
        else:
            r = max(-cw, min(cw, ew))
            weekly[bw] = sw + a_w * r
            st[6] += a_level * r
        # the record starts after warm-up: start-up surprises are the models learning
        if n_now >= warmup:
            for k in range(ne):
                exc[k] *= 1.0 - e_decay
            exc[ne] = exc[ne] * (1.0 - e_decay) + 1.0
            if short >= e_rec:  # the episode under way is held apart ...
                exc[ne + 2 + min(int(_size_pos(short, e_rec, e_span, ne)), ne - 1)] += 1.0
                exc[ne + 1] += 1.0
            if exc[ne + 1] > 0.0 and (short < e_rec or exc[ne + 1] >= e_maxrun):
                for k in range(ne):  # ... and joins the record when it ends
                    exc[k] += exc[ne + 2 + k]
                    exc[ne + 2 + k] = 0.0
                exc[ne + 1] = 0.0
        _add_value(hist, st, x, g_decay)
        st[11] = min(st[11], x)
        st[12] = max(st[12], x)
        st[0] += 1.0
        st[1] = t
        st[17] = best


def detect_series_anomalies(series: Series, state: dict | None, *, detector: OnlineAnomalyDetector,
                            direction: Direction, threshold: float, model: str | None, now: float
                            ) -> tuple[list[Finding], dict]:
    """Score only the points of `series` newer than the state's last timestamp, return
    findings for runs of points scoring >= `threshold` and the new state as a dict.

    One finding per run of anomalous points (the run may continue across cycles: its
    onset is then the state's remembered onset). `now` is the cycle time (window end).
    """
    st = detector.new_state() if state is None else SeriesState.from_dict(state["detector"])
    run_onset = None if state is None else state.get("run_onset")
    last = st.last_timestamp
    ts = np.asarray(series.timestamps, dtype=np.float64)
    xs = np.asarray(series.values, dtype=np.float64)
    if last is not None:
        keep = ts > last
        ts, xs = ts[keep], xs[keep]
    scores, detail = detector.score_detail(st, ts, xs, direction)
    findings: list[Finding] = []
    entity = series.label_str()
    window_start = float(ts[0]) if len(ts) else (last if last is not None else now)
    i = 0
    n = len(ts)
    while i < n:
        if not scores[i] >= threshold:
            if not math.isnan(xs[i]):
                run_onset = None
            i += 1
            continue
        j = i
        peak = i
        while j + 1 < n and (scores[j + 1] >= threshold or math.isnan(xs[j + 1])):
            j += 1
            if scores[j] > scores[peak]:
                peak = j
        onset = run_onset if run_onset is not None else float(ts[i])
        run_onset = onset
        findings.append(_finding(series, entity, ts, xs, scores, detail, peak, onset,
                                 window_start, float(ts[j]), direction, model))
        i = j + 1
    return findings, {"detector": st.to_dict(), "run_onset": run_onset}


def _finding(series: Series, entity: str, ts: np.ndarray, xs: np.ndarray, scores: np.ndarray,
             detail: PointDetail, k: int, onset: float, window_start: float, window_end: float,
             direction: Direction, model: str | None) -> Finding:
    x = float(xs[k])
    exp = float(detail.expected[k])
    sigma = float(detail.scale[k])
    band = (exp - 3.0 * sigma, exp + 3.0 * sigma)
    went = Direction.UP if x >= exp else Direction.DOWN
    edge = band[1] if went is Direction.UP else band[0]
    magnitude = x - exp
    rel = magnitude / abs(exp) if exp != 0 else None
    pct = f" ({rel:+.1%})" if rel is not None else ""
    return Finding(
        kind=FindingKind.METRIC_ANOMALY,
        entity=entity,
        value=x,
        threshold=edge,
        window_start=window_start,
        window_end=window_end,
        onset=onset,
        score=float(scores[k]),
        model=model,
        service=series.labels.get("service"),
        direction=went,
        baseline=exp,
        statistic="value_vs_expected",
        message=(f"{entity} = {x:.6g}, expected {exp:.6g} (band {band[0]:.6g} .. {band[1]:.6g})"
                 f"{pct}, anomaly score {float(scores[k]):.2f}"),
        evidence={"expected_band": [band[0], band[1]], "score": float(scores[k]),
                  "magnitude": magnitude, "relative_magnitude": rel, "sigma": sigma,
                  "at": float(ts[k]), "watched_direction": str(direction)},
    )
