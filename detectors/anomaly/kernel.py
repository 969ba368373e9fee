"""The compiled per-point recursion of the online anomaly detector (see __init__.py).

Sequential by nature (each point updates the models the next one is forecast with),
so numpy cannot express it without a Python loop: numba compiles it. The pure-Python
fallback gives the same numbers, only slower. State slots are documented in state.py.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

try:  # compiled kernel; the pure-Python fallback gives the same numbers, only slower
    from numba import njit
except ImportError:  # pragma: no cover - numba is a runtime dependency
    def njit(*args: Any, **kwargs: Any):  # type: ignore[no-redef]
        if args and callable(args[0]):
            return args[0]
        return lambda f: f


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
def kernel(p, st, daily, weekly, hist, ts, xs, vs, out, expected_out, scale_out, factor_out, exc):
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
    v_mem, v_max = p[29], p[30]
    cover_steps = p[31]
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
            st[20] = vs[i] if 0.0 < vs[i] < math.inf else 0.0
            st[21] = 1.0 if st[20] > 0.0 else 0.0
            expected_out[i] = x
            scale_out[i] = 0.0
            continue

        # --- forecasts of the three models
        # time observed, not merely elapsed: an interval counts up to `cover_steps` usual
        # steps, the rest is skipped; a series back after a week's silence has not thereby
        # filled a week of profile bins
        gap = t - st[1]
        skipped = st[23] + (max(gap - cover_steps * st[22], 0.0) if st[22] > 0.0 else 0.0)
        covered = (t - st[16]) - skipped
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
        daily_ready = covered >= 86400.0 and st[14] > 50.0
        weekly_ready = covered >= 604800.0 and st[15] > 50.0
        if daily_ready and st[5] < err:
            best = pd
            err = st[5]
        if weekly_ready and st[7] < err:
            best = pw
            err = st[7]
        floor = min_rel * abs(st[2]) + min_abs
        # a point of a ratio over few requests is noisier (binomial: sd ~ 1/sqrt(volume)):
        # the error trackers learn the noise at the usual volume, each point's band is
        # scaled to its own; without a volume every factor is 1
        v = vs[i]
        if not 0.0 < v < math.inf:  # NaN, zero, negative or infinite: unknown
            v = 0.0
        f = 1.0
        if v > 0.0 and st[20] > 0.0:
            f = min(max(math.sqrt(st[20] / v), 1.0 / v_max), v_max)
        sigma = _sd(err, floor) * f
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
        factor_out[i] = f

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
        st[3] = _track_error(st[3], n_now, el / f, a_err, floor)
        if daily_ready or covered >= 86400.0:
            st[14] += 1.0
            st[5] = _track_error(st[5], st[14], ed / f, a_err, floor)
        if weekly_ready or covered >= 604800.0:
            st[15] += 1.0
            st[7] = _track_error(st[7], st[15], ew / f, a_err, floor)
        step = 3.0 * sigma
        st[2] = pl + a_level * max(-step, min(step, el))
        # Holt-Winters additive: level from the deseasonalised value, profile from the de-levelled one
        # seasonal models: a profile of absolute values per time-of-day (time-of-week) bin plus
        # a slowly moving offset for level changes. Unlike Holt-Winters' deseasonalised level,
        # the profile is right from the first period on (no level that first learns the
        # cycle and then hands it over). Both move by at most 3 sigma of their model per
        # point, once its error tracker runs: a missing daily peak or a flat stretch must not
        # become the profile within the hour it lasts.
        cd = 3.0 * f * _sd(st[5], floor) if st[14] > 50.0 else math.inf
        cw = 3.0 * f * _sd(st[7], floor) if st[15] > 50.0 else math.inf
        # a bin is visited by every point falling in it: an update weighs the share of the
        # bin's width the point covers, so a bin learns once per period at any sampling rate
        # (else twelve 5-minute points rewrite an hourly bin within the hour)
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
        if v > 0.0:  # a running mean of the points with a volume, then an EW mean
            st[21] += 1.0
            st[20] = v if st[20] <= 0.0 else st[20] + max(v_mem, 1.0 / st[21]) * (v - st[20])
        # the usual step: a running median of the intervals (each moves it 1 % up or down),
        # so gaps and bursts do not pull it
        if st[22] <= 0.0:
            st[22] = gap
        elif gap > 0.0:
            st[22] *= 1.01 if gap > st[22] else (0.99 if gap < st[22] else 1.0)
        st[23] = skipped
        _add_value(hist, st, x, g_decay)
        st[11] = min(st[11], x)
        st[12] = max(st[12], x)
        st[0] += 1.0
        st[1] = t
        st[17] = best

