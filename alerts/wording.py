"""Findings and evidence in plain words with their units, times in the configured zone.

"CTR fell 7.3 % to 0.0463, from 0.0499 in the hour before" rather than
"kpi_change_pct -7.27 vs threshold -5": every notifier (Slack, the JSON-lines sink,
pagers) shows what a person would say, with the number next to its threshold
(STYLE.md, the Flagger lesson). Pure: payload fields in, text out; no mrkdwn here, so
each renderer escapes and decorates in its own syntax.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from alerts.statistic_words import stat_words
from detectors.numbers import NONFINITE, nonfinite_text, percent_pair, told_apart

# Statistics whose value is a share (0..1), shown as a percentage.
SHARES = {"missing_rate", "type_mismatch_share", "nonfinite_share", "out_of_range_share", "new_category_share",
           "fb_used_ratio", "kv_cache_ratio", "error_origin_rate"}

_TIME_KEYS = {"at", "onset", "from", "until", "breach_start", "saturated_from", "saturated_until"}


@dataclass(frozen=True)
class Wording:
    """How a message says things: its time zone and the KPI baseline's length."""

    time_zone: str = "UTC"
    baseline_s: float | None = None  # the window before the current one that a KPI is compared with
    units: Mapping[str, str] = field(default_factory=dict)  # series (an SLO's name) -> its unit

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> Wording:
        d = payload.get("display") if isinstance(payload.get("display"), Mapping) else {}
        assert isinstance(d, Mapping)
        base = d.get("baseline_s")
        units = d.get("units") if isinstance(d.get("units"), Mapping) else {}
        assert isinstance(units, Mapping)
        return cls(time_zone=str(d.get("time_zone") or "UTC"),
                   baseline_s=float(base) if isinstance(base, (int, float)) else None,
                   units={str(k): str(v) for k, v in units.items()})


# --------------------------------------------------------------------------- numbers
def _finite(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _absent(value: Any) -> str:
    """Not finite: as Prometheus writes it ("+Inf", as Finding.to_dict does); no number: n/a."""
    if isinstance(value, str) and value in NONFINITE:
        return value
    return (nonfinite_text(value) or "n/a") if isinstance(value, float) else "n/a"


def number(value: Any) -> str:
    """Three significant digits, thousands separated: 0.312, 12.3, 12,300, 1.23e-05; +Inf; n/a."""
    v = _finite(value)
    if v is None:
        return value if isinstance(value, str) else _absent(value)
    if v == 0:
        return "0"
    rounded = float(f"{v:.3g}")
    a = abs(rounded)
    if a >= 1000:
        return f"{rounded:,.0f}"
    if a >= 1e-3:
        return f"{rounded:.3g}"
    return f"{rounded:.2e}"


def seconds(value: Any) -> str:
    """A latency or duration in the unit a person reads it in: 250 ms, 1.5 s, 12 min."""
    v = _finite(value)
    if v is None:
        return _absent(value)
    a = abs(v)
    if a == 0:
        return "0 s"
    if a < 1e-3:
        return f"{number(v * 1e6)} µs"
    if a < 1:
        return f"{number(v * 1e3)} ms"
    if a < 120:
        return f"{number(v)} s"
    if a < 7200:
        return f"{number(v / 60)} min"
    return f"{number(v / 3600)} h"


def percent(value: Any, *, share: bool = False) -> str:
    """'7.3 %': a percentage, or a share (0..1) shown as one."""
    v = _finite(value)
    if v is None:
        return _absent(value)
    return f"{number(v * 100 if share else v)} %"


def in_unit(value: Any, unit: str) -> str:
    """A value in a configured unit (an SLO's `unit`): s, ms, %, ratio or a free word."""
    u = (unit or "").strip()
    if u in ("s", "sec", "seconds"):
        return seconds(value)
    if u == "ms":
        v = _finite(value)
        return seconds(v / 1000) if v is not None else _absent(value)
    if u in ("%", "pct", "percent"):
        return percent(value)
    if u == "ratio":
        return percent(value, share=True)
    return f"{number(value)} {u}" if u else number(value)


def stat_value(value: Any, statistic: str) -> str:
    """A statistic's value in its unit, read from its name (suffix _s, _ms, _pct, _ratio, a share)."""
    stat = (statistic or "").lower()
    if stat in SHARES or stat.endswith(("_ratio", "_fraction", "_share")):
        return percent(value, share=True)
    if stat.endswith(("_pct", "_percent")) or stat in ("pct", "percent"):
        return percent(value)
    if stat.endswith(("_s", "_seconds", "_sec")):
        return seconds(value)
    if stat.endswith("_ms") or "_ms_" in stat:
        v = _finite(value)
        return seconds(v / 1000) if v is not None else _absent(value)
    return number(value)


def duration(value: Any) -> str:
    """A window length in words: 45 s, 5 min, 1 h, 1 h 30 min, 7 days."""
    v = _finite(value)
    if v is None or v < 0:
        return "n/a"
    s = int(round(v))
    if s < 60:
        return f"{s} s"
    parts: list[str] = []
    for unit, size in (("days", 86400), ("h", 3600), ("min", 60)):
        n, s = divmod(s, size)
        if n:
            parts.append(f"{n} {'day' if unit == 'days' and n == 1 else unit}")
    return " ".join(parts[:2])


def the_window_before(seconds_: float | None) -> str:
    """'the hour before', 'the 30 min before', or 'the baseline' when the length is unknown."""
    if seconds_ is None:
        return "the baseline"
    if abs(seconds_ - 3600) < 1:
        return "the hour before"
    if abs(seconds_ - 86400) < 1:
        return "the day before"
    return f"the {duration(seconds_)} before"


# --------------------------------------------------------------------------- times
def zone(name: str) -> ZoneInfo:
    """The IANA zone; an unknown name falls back to UTC (config validation refuses it first)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def clock(ts: Any, tz: str = "UTC") -> str:
    """'2026-11-20 10:00 CET': epoch seconds in the configured zone, with its abbreviation."""
    t = _finite(ts)
    if t is None:
        return "n/a"
    try:
        when = datetime.fromtimestamp(t, tz=UTC).astimezone(zone(tz))
    except (OverflowError, OSError, ValueError):
        return "n/a"
    return when.strftime("%Y-%m-%d %H:%M %Z")


def is_time_key(key: str) -> bool:
    """Evidence values that are epoch seconds: shown as times, never as 1.8e9."""
    return key in _TIME_KEYS or key.endswith("_at")


# --------------------------------------------------------------------------- findings
def finding_sentence(f: Mapping[str, Any], w: Wording) -> tuple[str, str]:
    """(entity, the rest): what one finding says, e.g. ('ctr', 'fell 7.3 % to 0.0463, from 0.0499 in
    the hour before (alerts at -5 %)'). The renderer puts the entity in bold."""
    kind = str(f.get("kind") or "")
    stat = str(f.get("statistic") or kind or "value")
    entity = str(f.get("entity") or kind or "?")
    sentence = _SENTENCES.get(kind, _generic)(f, stat, w)
    return entity, sentence


def _kpi(f: Mapping[str, Any], stat: str, w: Wording) -> str:
    ev = f.get("evidence") if isinstance(f.get("evidence"), Mapping) else {}
    assert isinstance(ev, Mapping)
    pct, base, now = _finite(f.get("value")), _finite(f.get("baseline")), _finite(ev.get("current"))
    if pct is None:
        return _generic(f, stat, w)
    word = "fell" if pct < 0 else "rose"
    level = f" to {number(now)}" if now is not None else ""
    before = f", from {number(base)} in {the_window_before(w.baseline_s)}" if base is not None else ""
    threshold = _finite(f.get("threshold"))
    # The KPI's own alerting limit: alone a drop past it is a warning (critical only with drift
    # or a deploy as its cause, alerts/policy.py), so it is not worded "critical at".
    limit = f" (alerts at {'+' if threshold and threshold > 0 else ''}{percent(threshold)})" if threshold else ""
    return f"{word} {percent(abs(pct))}{level}{before}{limit}"


def _anomaly(f: Mapping[str, Any], stat: str, w: Wording) -> str:
    ev = f.get("evidence") if isinstance(f.get("evidence"), Mapping) else {}
    assert isinstance(ev, Mapping)
    value, expected = _finite(f.get("value")), _finite(f.get("baseline"))
    band = ev.get("expected_band")
    if value is None:
        return _generic(f, stat, w)
    unit = w.units.get(str(f.get("entity")), "")
    shown = (lambda v: in_unit(v, unit)) if unit else number
    below = expected is not None and value < expected
    # the value and band are of bin means: a raw panel's points swing wider than this band
    res = _finite(ev.get("resolution_s"))
    mean = f" as a {duration(res)} mean" if res else ""
    text = f"is {shown(value)}{mean}, {'below' if below else 'above'} its expected range"
    if isinstance(band, (list, tuple)) and len(band) == 2:
        text += f" {shown(band[0])} to {shown(band[1])}"
    if expected is not None:
        text += f" (expected {shown(expected)}"
        rel = _finite(ev.get("relative_magnitude"))
        text += f", {'+' if rel and rel > 0 else ''}{percent(rel, share=True)})" if rel is not None else ")"
    # a ratio told its volume: the range follows the traffic, say so beside it
    factor = _finite(ev.get("volume_factor"))
    if factor is not None and factor != 1.0:
        text += f"; at this traffic the range is {factor:.2g}× its usual width"
    return text


def _slo(f: Mapping[str, Any], stat: str, w: Wording) -> str:
    ev = f.get("evidence") if isinstance(f.get("evidence"), Mapping) else {}
    assert isinstance(ev, Mapping)
    unit = str(ev.get("unit") or w.units.get(str(f.get("entity")), ""))
    shown = (lambda v: in_unit(v, unit)) if unit else (lambda v: stat_value(v, stat))
    above = str(f.get("direction") or "up") != "down"
    text = f"is {shown(f.get('value'))}, {'above' if above else 'below'} its SLO of {shown(f.get('threshold'))}"
    minutes = _finite(ev.get("breach_minutes"))
    if minutes is not None and minutes >= 1:
        text += f" for {duration(minutes * 60)}"
    if _finite(ev.get("peak")) is not None:
        text += f" (peak {shown(ev.get('peak'))})"
    return text


def value_pair(value: Any, threshold: Any, statistic: str) -> tuple[str, str]:
    """A value and the threshold it crossed, with the digits that tell them apart: PSI 0.1004
    against 0.1 read '0.1, above the threshold 0.1', which a person takes for a false alarm."""
    a, b = stat_value(value, statistic), stat_value(threshold, statistic)
    v, t = _finite(value), _finite(threshold)
    if a != b or v is None or t is None or v == t:
        return a, b
    stat = (statistic or "").lower()
    share = stat in SHARES or stat.endswith(("_ratio", "_fraction", "_share"))
    if not share and a != number(value):  # durations keep their unit's wording
        return a, b
    scale, suffix = (100.0, " %") if share else (1.0, "")
    return told_apart(v, t, lambda x, d: f"{x * scale:.{d}g}{suffix}", range(4, 18))


def _drift(f: Mapping[str, Any], stat: str, w: Wording) -> str:
    ev = f.get("evidence") if isinstance(f.get("evidence"), Mapping) else {}
    assert isinstance(ev, Mapping)
    shown, limit = value_pair(f.get("value"), f.get("threshold"), stat)
    text = f"{stat_words(stat)} {shown}, above the threshold {limit}"
    cur, ref = _finite(ev.get("n_current")), _finite(ev.get("n_reference"))
    q: Mapping[str, Any] = ev["quality"] if isinstance(ev.get("quality"), Mapping) else {}
    mc, mr = _finite(q.get("mean_current")), _finite(q.get("mean_reference"))
    moved = ""  # a numeric feature: which way, how far
    if mc is not None and mr is not None and mc != mr:
        moved = "mean {}, {} in the reference".format(*told_apart(mc, mr, lambda x, d: f"{x:.{d}g}", range(4, 18)))
    judged = ev.get("reference") if isinstance(ev.get("reference"), Mapping) else {}
    against = f", {judged['name']}" if isinstance(judged, Mapping) and judged.get("name") else ""  # training or rolling
    sliced = ev.get("reference_rows") if isinstance(ev.get("reference_rows"), str) else ""  # time of day
    where = ("in the " + sliced if sliced.startswith("whole") else f"of the reference's {sliced} rows") if sliced \
        else "in the reference"
    rows = f"{number(cur)} rows against {number(ref)} {where}{against}" if cur is not None and ref is not None else ""
    said = "; ".join(filter(None, [rows, moved, _categories_moved(ev.get("moved_categories"))]))
    return text + (f" ({said})" if said else "")


def _categories_moved(moved: Any) -> str:
    """A categorical feature: "'Lyon' 55 % vs 24 % in the reference, 'Paris' 11 % vs 26 %"."""
    parts: list[str] = []
    for m in moved if isinstance(moved, list) else []:
        if not isinstance(m, Mapping):
            continue
        cur, ref = _finite(m.get("current_share")), _finite(m.get("reference_share"))
        if cur is None or ref is None:
            continue
        a, b = percent_pair(cur, ref)
        parts.append(f"{str(m.get('category'))!r} {a} % vs {b} %" + ("" if parts else " in the reference"))
    return ", ".join(parts)


def _gpu(f: Mapping[str, Any], stat: str, w: Wording) -> str:
    ev = f.get("evidence") if isinstance(f.get("evidence"), Mapping) else {}
    assert isinstance(ev, Mapping)
    text = (f"{stat_words(stat)} averaged {stat_value(f.get('value'), stat)}, at or above "
            f"{stat_value(f.get('threshold'), stat)}")
    minutes, since = _finite(ev.get("minutes")), _finite(ev.get("saturated_from"))
    onset, until = _finite(f.get("onset")), _finite(ev.get("saturated_until"))
    if since is not None and onset is not None and until is not None and onset < since \
            and ev.get("cut") is not False:
        # The latest window cut the run; the incident's story (merged findings) saw it begin
        # earlier, as the GPU cause says ("began at"): tell that start and the time since.
        # A run the window saw begin (`cut` False) is a saturation that came back: "for 49
        # min from 07:00" told 20 min under the limit as saturated. (No `cut`: an older row.)
        since, minutes = onset, (until - onset) / 60.0
    if minutes is not None:
        text += f" for {duration(minutes * 60)}"
    if since is not None:
        text += f" from {clock(since, w.time_zone)}"
    if _finite(ev.get("peak")) is not None:
        text += f" (peak {stat_value(ev.get('peak'), stat)})"
    return text


def _generic(f: Mapping[str, Any], stat: str, w: Wording) -> str:
    shown, limit = value_pair(f.get("value"), f.get("threshold"), stat)
    return f"{stat_words(stat)} {shown} against a threshold of {limit}"


def _no_data(f: Mapping[str, Any], stat: str, w: Wording) -> str:
    """Drift not assessed for want of rows (detectors/drift/not_assessed.py: the rows there as its
    value, `min_samples` needed) says so; "n current 40 against a threshold of 100" read as a
    statistic past its limit. Other gaps keep the generic line under their own message."""
    ev = f.get("evidence") if isinstance(f.get("evidence"), Mapping) else {}
    assert isinstance(ev, Mapping)
    rows, needed = _finite(f.get("value")), _finite(ev.get("min_samples"))
    if stat not in ("n_current", "n_reference") or rows is None or needed is None:
        return _generic(f, stat, w)
    where = "in the window" if stat == "n_current" else "in the reference"
    what = "not assessed" if "features_not_assessed" in ev else "drift not assessed"  # entity "drift", or the feature
    return f"{what}: {rows:,.0f} rows {where}, {needed:,.0f} needed (policy.min_samples)"


_SENTENCES = {
    "kpi_drop": _kpi,
    "metric_anomaly": _anomaly,
    "slo_breach": _slo,
    "feature_drift": _drift,
    "prediction_drift": _drift,
    "data_quality": _generic,
    "gpu_saturation": _gpu,
    "no_data": _no_data,
}
