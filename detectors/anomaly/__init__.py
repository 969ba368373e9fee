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

State per series is a few hundred floats (`AnomalyState`), JSON-serialisable, so the
daemon restarts without a cold start. The per-point recursion is compiled with numba
(it is sequential by nature; numpy cannot express it without a Python loop).

False alarms on healthy noise are a rate per point, so `AnomalyParams.resolution` lets
`score` judge the means of complete, clock-aligned bins (the daemon's default: 5 minutes,
the resolution the detector is tuned at) instead of every queried point.

A ratio's noise follows its traffic (binomial: sd ~ 1/sqrt(requests)), so `score_volume`
takes the requests behind each point too (a KPI's or SLO's `volume_query`): the error
trackers learn the noise at the series' usual volume and each point's band is scaled by
sqrt(usual / its volume). Without a volume, or with a constant one, nothing changes.

Modules: `detector.py` (the contract: `OnlineAnomalyDetector`, `AnomalyParams`),
`tuning.py` (`AnomalyTuning`, one configuration for every series), `state.py`
(`AnomalyState`, `SeriesState`), `kernel.py` (the compiled recursion), `resolution.py`
(bin means, a volume matched to them).
"""
from detectors.anomaly.detector import AnomalyParams, OnlineAnomalyDetector, PointDetail
from detectors.anomaly.state import STATE_VERSION, AnomalyState, SeriesState
from detectors.anomaly.tuning import AnomalyTuning

__all__ = ["STATE_VERSION", "AnomalyParams", "AnomalyState", "AnomalyTuning", "OnlineAnomalyDetector",
           "PointDetail", "SeriesState"]
