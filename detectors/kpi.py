"""Business KPI change against its baseline, in percent, in the direction that hurts.

    detector = KpiDetector(KpiParams(kpi="ctr", bad_direction=Direction.DOWN, threshold_pct=5, recent=600))
    state = detector.fit(kpi_series, baseline_start, baseline_end)   # the baseline level
    findings = detector.score(state, kpi_series, start, end)
"""
from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from detectors.records import Direction, Finding, FindingKind, Series

MIN_NOISE_POINTS = 10  # real baseline points a noise (`KpiState.noise_pct`) is told from


@dataclass(frozen=True)
class KpiParams:
    kpi: str
    bad_direction: Direction
    threshold_pct: float  # a move of at least this many percent the bad way is a finding
    recent: float  # seconds at the end of the window whose median is the current level
    model: str | None = None
    # A drop is *held* (what a deploy's regression needs before it is critical, and so before
    # Vigil rolls back on its own) when each of the last `held_stretches` stretches of
    # `recent` seconds is past the threshold and the wander, and their median is `held_z`
    # times the baseline's noise beyond the baseline (the noise of a median over m stretches
    # taken as 1/sqrt(m) of one point's); or at once, when the last stretch is twice `held_z`
    # times the noise away (no noise the baseline showed comes near it).
    held_stretches: int = 3
    held_z: float = 4.0


@dataclass(frozen=True)
class KpiState:
    """The baseline level (median of the reference period), None when it had no data, and
    how far the current-level statistic wandered from it there by itself (`wander_pct`: the
    largest move, in %, of a median over `recent` seconds inside the reference period; None
    when the period is too short to tell), and the spread of its points (`noise_pct`: robust
    standard deviation, in % of the baseline; None when unknown)."""

    baseline: float | None
    wander_pct: float | None = None
    noise_pct: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"baseline": self.baseline, "wander_pct": self.wander_pct, "noise_pct": self.noise_pct}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> KpiState:
        b, w, n = d.get("baseline"), d.get("wander_pct"), d.get("noise_pct")
        for name, v in (("baseline", b), ("wander_pct", w), ("noise_pct", n)):
            if v is not None and not isinstance(v, int | float):
                raise ValueError(f"KPI state: {name!r} must be a number or null, got {v!r}")
        return cls(*(None if v is None else float(v) for v in (b, w, n)))


@dataclass(frozen=True)
class KpiLevels:
    current: float  # median over the last `recent` seconds of the window
    baseline: float
    change_pct: float


@dataclass(frozen=True)
class KpiDetector:
    params: KpiParams

    def fit(self, reference: Series, start: float, end: float) -> KpiState:
        """Median of the reference period's points (one scrape glitch must not move a KPI
        verdict), and how far a median of `recent` seconds strays from it there: a KPI over
        few requests (a click rate at 1,000 impressions a minute) moves 5 % by itself every
        few cycles, and a move it makes on its own every hour is no drop."""
        ref = reference.between(start, end)
        real = ~np.isnan(ref.values)
        base, ts = ref.values[real], ref.timestamps[real]
        if not len(base):
            return KpiState(None)
        b = float(np.median(base))
        k = int(np.count_nonzero(ts >= ts[-1] - self.params.recent))  # points in one current stretch
        if b == 0:
            return KpiState(b)
        # A spread of a handful of points (dawn after an idle night) is 0 whenever two of three
        # agree: read as "no noise", any drop was held at once and rolled back. Unknown instead.
        noise = _noise(base, b) if len(base) >= MIN_NOISE_POINTS else None
        if len(base) < 2 * k + 1:
            return KpiState(b, None, noise)
        stretches = np.median(np.lib.stride_tricks.sliding_window_view(base, k), axis=1)
        return KpiState(b, float(np.max(np.abs(stretches - b))) / abs(b) * 100.0, noise)

    def levels(self, state: KpiState, window: Series, start: float, end: float) -> KpiLevels | None:
        """Current level, baseline level and change in %, or None when either side has no
        data (or the baseline is 0). The current level is taken over the last `recent`
        seconds so an old part of the window does not dilute a fresh drop; when those are
        all NaN (a ratio at 0/0: no traffic lately), over the `recent` seconds up to the
        window's last real point, which is what is known of the KPI now."""
        inside = window.between(start, end)
        cur = inside.between(end - self.params.recent, end).values
        cur = cur[~np.isnan(cur)]
        if len(cur) == 0 and not inside.empty:
            last = float(inside.timestamps[~np.isnan(inside.values)][-1])
            cur = inside.between(last - self.params.recent, last).values
            cur = cur[~np.isnan(cur)]
        b = state.baseline
        if len(cur) == 0 or b is None:
            return None
        c = float(np.median(cur))
        if b == 0:
            return None
        return KpiLevels(c, b, _change_pct(c, b))

    def score(self, state: KpiState, window: Series, start: float, end: float) -> list[Finding]:
        """A KPI_DROP finding when the KPI moved by at least `threshold_pct` the bad way.

        Movements in the harmless direction never produce a finding (CTR going up is
        not an incident).
        """
        change = self.levels(state, window, start, end)
        if change is None or (state.wander_pct is not None and abs(change.change_pct) <= state.wander_pct):
            return []
        held = (self.held(state, window, start, end), self.params.held_stretches * self.stretch(start, end),
                self.no_traffic(window, start, end))
        return _finding(self.params, change, window.between(start, end), start, end, state, held)

    def held(self, state: KpiState, window: Series, start: float, end: float) -> float:
        """Seconds the drop has been held (see `KpiParams.held_stretches`), 0 when it has not.
        A 5-minute median over a few hundred requests moves 5 % by itself several times an
        hour, so a single cycle's drop after a deploy rolled back most healthy deploys
        (`python -m benchmarks.kpi_noise`): a regression must hold before Vigil acts on it."""
        p, b = self.params, state.baseline
        m, s = p.held_stretches, self.stretch(start, end)
        if not b or state.noise_pct is None:
            return 0.0
        last = window.between(end - s, end)
        if self._past_bars(state, last) and abs(_pct(last, b)) >= 2 * p.held_z * state.noise_pct:
            return s  # beyond any noise the baseline showed: as sure as three stretches
        for j in range(m):
            if not self._past_bars(state, window.between(end - (j + 1) * s, end - j * s)):
                return 0.0
        change = _pct(window.between(end - m * s, end), b)
        return m * s if abs(change) >= p.held_z * state.noise_pct / np.sqrt(m) else 0.0

    def no_traffic(self, window: Series, start: float, end: float) -> float | None:
        """Seconds since the window's last real point when the last stretch is 0/0 (NaN) throughout:
        traffic stopped, and no drop holds until it returns (`held`). None otherwise."""
        inside = window.between(start, end)
        last = inside.between(end - self.stretch(start, end), end)
        if not len(last.values) or not last.empty or inside.empty:
            return None
        return end - float(inside.timestamps[~np.isnan(inside.values)][-1])

    def stretch(self, start: float, end: float) -> float:
        """Seconds of one stretch a drop must hold: `recent`, shorter when `held_stretches` of
        them do not fit in the window. Fewer stretches instead (one of 45 minutes at a
        15-minute interval, reaching back before a 30-minute window) had to be 4 times the
        noise away, not 4/sqrt(3): a 20 % drop at 1,000 impressions a minute was never rolled back."""
        return min(self.params.recent, (end - start) / self.params.held_stretches)

    def _past_bars(self, state: KpiState, stretch: Series) -> bool:
        if not state.baseline or np.isnan(stretch.values).all():
            return False
        change = _pct(stretch, state.baseline)
        thr = self.params.threshold_pct
        bad = change <= -thr if self.params.bad_direction == Direction.DOWN else change >= thr
        return bad and (state.wander_pct is None or abs(change) > state.wander_pct)


def _noise(base: np.ndarray, b: float) -> float:
    """Robust standard deviation of the baseline's points, in % of `b`. Over half of them on one
    value (a quantised KPI) makes the median deviation 0, read as "no noise": any drop past the
    bars was held at once. The mean deviation then (0 only when the baseline never moved)."""
    dev = np.abs(base - b)
    spread = 1.4826 * float(np.median(dev)) or 1.2533 * float(np.mean(dev))
    return spread / abs(b) * 100.0


def _pct(stretch: Series, baseline: float) -> float:
    """Change of the stretch's median from the baseline, in % (the stretch holds a real point)."""
    return _change_pct(float(np.nanmedian(stretch.values)), baseline)


def _change_pct(level: float, baseline: float) -> float:
    """Change of `level` from the (non-zero) baseline in % of its size: a drop is negative below zero too."""
    return (level - baseline) / abs(baseline) * 100.0


def _onset(current: Series, level: float, bad_direction: Direction, window_end: float) -> float:
    """Start of the trailing stretch where the (median-smoothed) KPI sits past `level`.
    Trailing NaN (a ratio at 0/0: traffic stopped) is left out: the stretch ends at the
    last real point, or a drop before traffic stopped would date from the window's end."""
    real = np.flatnonzero(~np.isnan(current.values))
    if len(real) and real[-1] < len(current.values) - 1:
        current = Series(current.name, current.labels, current.timestamps[:real[-1] + 1],
                         current.values[:real[-1] + 1])
    v = current.values
    if len(v) >= 5:
        pad = np.pad(v, 2, mode="edge")
        with warnings.catch_warnings():  # a stretch of five NaN (no traffic) is NaN, not a warning
            warnings.simplefilter("ignore", RuntimeWarning)
            v = np.nanmedian(np.lib.stride_tricks.sliding_window_view(pad, 5), axis=1)
    with np.errstate(invalid="ignore"):
        bad = v < level if bad_direction == Direction.DOWN else v > level
    if len(bad) == 0 or not bad[-1]:
        return window_end
    good_idx = np.flatnonzero(~bad)
    first_bad = good_idx[-1] + 1 if len(good_idx) else 0
    return float(current.timestamps[first_bad])


def _finding(p: KpiParams, change: KpiLevels, current: Series, start: float, end: float,
             state: KpiState, held: tuple[float, float, float | None]) -> list[Finding]:
    """`held`: seconds held, seconds needed to hold, seconds without traffic (`KpiDetector`)."""
    level, base, pct = change.current, change.baseline, change.change_pct
    held_s, needed_s, quiet_s = held
    wander_pct = state.wander_pct
    down = p.bad_direction == Direction.DOWN
    bad = pct <= -p.threshold_pct if down else pct >= p.threshold_pct
    if not bad:
        return []
    # The limit is the threshold's share of |baseline| the bad way: scaling a negative
    # baseline (a margin at -10) put it on the good side, and the onset at the window start.
    edge = base - abs(base) * p.threshold_pct / 100 if down else base + abs(base) * p.threshold_pct / 100
    word = "dropped" if pct < 0 else "rose"
    return [Finding(
        kind=FindingKind.KPI_DROP,
        entity=p.kpi,
        model=p.model,
        value=pct,
        threshold=-p.threshold_pct if down else p.threshold_pct,
        baseline=base,
        window_start=start,
        window_end=end,
        onset=_onset(current, edge, p.bad_direction, end),
        score=float(min(1.0, abs(pct) / (4 * p.threshold_pct))),
        direction=p.bad_direction,
        statistic="kpi_change_pct",
        message=(
            f"KPI {p.kpi} {word} {abs(pct):.1f}% (now {level:.4g} vs baseline {base:.4g}; "
            f"threshold {p.threshold_pct:g}%" + (f", beyond its own wander of {wander_pct:.1f}%)"
                                                 if wander_pct is not None and wander_pct >= p.threshold_pct else ")")
            + (f"; no traffic (0/0) for the last {quiet_s / 60:.0f} min: judged on the points before it"
               if quiet_s is not None else "")
            + (f"; {held_words(held_s, needed_s, p.held_z, state.noise_pct)}" if held_s else "")
        ),
        evidence={"current": level, "baseline": base, "change_pct": pct, "series": current.label_str(),
                  "wander_pct": wander_pct, "noise_pct": state.noise_pct, "held_s": held_s,
                  "held_needed_s": needed_s, "held_z": p.held_z, "no_traffic_s": quiet_s},
    )]


def held_words(held_s: float, needed_s: float | None, held_z: float | None, noise_pct: float | None) -> str:
    """How a drop held, for a finding's message and a regression's reason ("" when it has not).
    Held in fewer seconds than the stretches need is held at once (`KpiDetector.held`): "held
    5 min" read as a third of the 15 minutes the warning before it had said."""
    if not held_s:
        return ""
    if needed_s and held_s < needed_s:
        bar = f"beyond {2 * held_z:g}x its noise" if held_z else "far beyond its noise"
        return f"held at once: a drop {bar}" + (f" ({noise_pct:.1f}%)" if noise_pct is not None else "")
    return f"held {held_s / 60:.0f} min"
