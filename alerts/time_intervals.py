"""Recurring time intervals in Alertmanager's `time_intervals` format: maintenance windows.

    time_intervals:
      - name: weekly-maintenance
        time_intervals:
          - times: [{start_time: "02:00", end_time: "04:00"}]
            weekdays: ["saturday:sunday"]
            days_of_month: ["1:7", "-1"]     # negative: from the end of the month
            months: ["january:march", "12"]
            years: ["2026:2027"]
            location: Europe/Berlin          # default UTC

A field left out matches any value; an interval holds when every field it gives holds;
a named set holds when any of its intervals does. Ranges are inclusive, times are
[start, end) in minutes of the day, "24:00" may end one. A model (or the grouping of
shared causes) names the sets that mute it (`mute_time_intervals`): its incidents keep
opening and being recorded, but page no one while a set is active.
"""
from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

WEEKDAYS = {name: i for i, name in enumerate(["monday", "tuesday", "wednesday", "thursday", "friday",
                                                "saturday", "sunday"])}
MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_name) if name}
_TIME = re.compile(r"^([01]?\d|2[0-4]):([0-5]\d)$")

Range = tuple[int, int]


class IntervalError(ValueError):
    """A time interval that does not parse; `field` says which part."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class TimeInterval:
    times: tuple[Range, ...] = ()  # minutes of the day, [start, end)
    weekdays: tuple[Range, ...] = ()  # 0 = monday
    days_of_month: tuple[Range, ...] = ()  # 1..31, or -31..-1 from the end
    months: tuple[Range, ...] = ()  # 1..12
    years: tuple[Range, ...] = ()
    location: str = "UTC"

    def contains(self, t: float) -> bool:
        d = dt.datetime.fromtimestamp(t, ZoneInfo(self.location))
        minute = d.hour * 60 + d.minute
        if self.times and not any(a <= minute < b for a, b in self.times):
            return False
        if self.weekdays and not _in(d.weekday(), self.weekdays):
            return False
        if self.days_of_month and not _day_in(d, self.days_of_month):
            return False
        if self.months and not _in(d.month, self.months):
            return False
        return not self.years or _in(d.year, self.years)


def _in(v: int, ranges: Sequence[Range]) -> bool:
    return any(a <= v <= b for a, b in ranges)


def _day_in(d: dt.datetime, ranges: Sequence[Range]) -> bool:
    last = calendar.monthrange(d.year, d.month)[1]
    for a, b in ranges:
        a2, b2 = (a + last + 1 if a < 0 else a), (b + last + 1 if b < 0 else b)
        if a2 <= d.day <= min(b2, last):
            return True
    return False


@dataclass(frozen=True)
class NamedIntervals:
    name: str
    intervals: tuple[TimeInterval, ...]

    def active(self, t: float) -> bool:
        return any(i.contains(t) for i in self.intervals)


def active_names(sets: Mapping[str, NamedIntervals], names: Sequence[str], t: float) -> list[str]:
    """Which of `names` are active at `t` (unknown names were refused by the config)."""
    return [n for n in names if n in sets and sets[n].active(t)]


# ---------------------------------------------------------------- parsing (from the YAML's dicts)
def _minutes(raw: Any, field: str) -> int:
    m = _TIME.match(str(raw).strip()) if isinstance(raw, str) else None
    if not m:
        raise IntervalError(field, f"expected HH:MM between 00:00 and 24:00, got {raw!r}")
    h, mi = int(m.group(1)), int(m.group(2))
    if h == 24 and mi:
        raise IntervalError(field, f"expected HH:MM between 00:00 and 24:00, got {raw!r}")
    return h * 60 + mi


def _value(raw: str, names: Mapping[str, int] | None, lo: int, hi: int, field: str) -> int:
    s = raw.strip().lower()
    if names is not None and s in names:
        return names[s]
    if names is WEEKDAYS:
        raise IntervalError(field, f"expected a weekday name (monday ... sunday), got {raw!r}")
    try:
        v = int(s)
    except ValueError:
        what = f"a name ({', '.join(list(names)[:3])}, ...) or " if names else ""
        raise IntervalError(field, f"expected {what}a number in {lo}..{hi}, got {raw!r}") from None
    if not lo <= v <= hi or v == 0 and lo < 0:
        raise IntervalError(field, f"expected a number in {lo}..{hi}, got {raw!r}")
    return v


def _ranges(raw: Any, field: str, names: Mapping[str, int] | None, lo: int, hi: int) -> tuple[Range, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(x, (str, int)) for x in raw):
        raise IntervalError(field, f"expected a list of values or 'a:b' ranges, got {raw!r}")
    out = []
    for i, item in enumerate(raw):
        parts = str(item).split(":")
        if len(parts) > 2:
            raise IntervalError(f"{field}[{i}]", f"expected a value or a range 'a:b', got {item!r}")
        a = _value(parts[0], names, lo, hi, f"{field}[{i}]")
        b = _value(parts[-1], names, lo, hi, f"{field}[{i}]")
        if (a < 0) == (b < 0) and a > b or (a < 0) != (b < 0) and _never(a, b):
            raise IntervalError(f"{field}[{i}]", f"range start {parts[0]!r} is after its end {parts[-1]!r}")
        out.append((a, b))
    return tuple(out)


def _never(a: int, b: int) -> bool:
    """A days_of_month range, one end counted from the month's end, that holds in no month
    (`-3:5`: a range never wraps into the next month); kept, it would mute nothing, silently."""
    return all((a + last + 1 if a < 0 else a) > (b + last + 1 if b < 0 else b) for last in range(28, 32))


def parse_interval(raw: Mapping[str, Any], field: str = "time_interval") -> TimeInterval:
    known = {"times", "weekdays", "days_of_month", "months", "years", "location"}
    extra = sorted(set(raw) - known)
    if extra:
        raise IntervalError(f"{field}.{extra[0]}", f"unknown key; expected one of {', '.join(sorted(known))}")
    times = []
    for i, t in enumerate(raw.get("times") or []):
        if not isinstance(t, Mapping) or set(t) != {"start_time", "end_time"}:
            raise IntervalError(f"{field}.times[{i}]", "expected {start_time: 'HH:MM', end_time: 'HH:MM'}")
        a = _minutes(t["start_time"], f"{field}.times[{i}].start_time")
        b = _minutes(t["end_time"], f"{field}.times[{i}].end_time")
        if a >= b:
            raise IntervalError(f"{field}.times[{i}]", "start_time must be before end_time")
        times.append((a, b))
    location = raw.get("location") or "UTC"
    try:
        ZoneInfo(str(location))
    except (ZoneInfoNotFoundError, ValueError):
        raise IntervalError(f"{field}.location", f"unknown time zone {location!r} (e.g. Europe/Berlin)") from None
    return TimeInterval(
        times=tuple(times),
        weekdays=_ranges(raw.get("weekdays"), f"{field}.weekdays", WEEKDAYS, 0, 6),
        days_of_month=_ranges(raw.get("days_of_month"), f"{field}.days_of_month", None, -31, 31),
        months=_ranges(raw.get("months"), f"{field}.months", MONTHS, 1, 12),
        years=_ranges(raw.get("years"), f"{field}.years", None, 1970, 9999),
        location=str(location),
    )
