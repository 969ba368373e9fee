"""Maintenance windows in Alertmanager's time_intervals format."""
from __future__ import annotations

import datetime as dt

import pytest

from alerts.time_intervals import IntervalError, NamedIntervals, parse_interval


def at(s: str) -> float:
    return dt.datetime.fromisoformat(s).timestamp()


def test_weekly_window_in_a_time_zone():
    i = parse_interval({"times": [{"start_time": "02:00", "end_time": "04:00"}], "weekdays": ["saturday:sunday"],
                        "location": "Europe/Berlin"})
    assert i.contains(at("2026-11-21T02:30:00+01:00"))  # a Saturday, Berlin time
    assert not i.contains(at("2026-11-21T03:30:00+00:00"))  # 04:30 Berlin: after the window
    assert not i.contains(at("2026-11-21T04:00:00+01:00"))  # end is exclusive
    assert not i.contains(at("2026-11-20T02:30:00+01:00"))  # a Friday


def test_days_of_month_from_the_end_months_and_years():
    last_days = parse_interval({"days_of_month": ["-2:-1"], "months": ["february"], "years": ["2028"]})
    assert last_days.contains(at("2028-02-29T12:00:00+00:00"))  # leap year: the 28th and 29th
    assert last_days.contains(at("2028-02-28T12:00:00+00:00"))
    assert not last_days.contains(at("2028-02-27T12:00:00+00:00"))
    assert not last_days.contains(at("2027-02-28T12:00:00+00:00"))


def test_all_day_and_24_00():
    i = parse_interval({"times": [{"start_time": "22:00", "end_time": "24:00"}]})
    assert i.contains(at("2026-01-01T23:59:00+00:00")) and not i.contains(at("2026-01-01T21:59:00+00:00"))


def test_named_set_is_active_when_any_interval_is():
    n = NamedIntervals("nightly", (parse_interval({"weekdays": ["monday"]}), parse_interval({"months": ["12"]})))
    assert n.active(at("2026-12-02T10:00:00+00:00")) and n.active(at("2026-11-23T10:00:00+00:00"))
    assert not n.active(at("2026-11-24T10:00:00+00:00"))


@pytest.mark.parametrize(("raw", "field"), [
    ({"times": [{"start_time": "25:00", "end_time": "26:00"}]}, "t.times[0].start_time"),
    ({"times": [{"start_time": "04:00", "end_time": "02:00"}]}, "t.times[0]"),
    ({"weekdays": ["funday"]}, "t.weekdays[0]"),
    ({"months": ["13"]}, "t.months[0]"),
    ({"location": "Mars/Olympus"}, "t.location"),
    ({"hours": ["1"]}, "t.hours"),
])
def test_bad_intervals_name_the_field(raw, field):
    with pytest.raises(IntervalError) as e:
        parse_interval(raw, "t")
    assert e.value.field == field


@pytest.mark.parametrize("days", ["-3:5", "25:-10"])
def test_a_days_of_month_range_that_holds_in_no_month_is_refused(days):
    """`-3:5` (the last 3 days to the 5th, read as a range that wraps) was taken and then
    never held: the maintenance window muted nothing, silently. Alertmanager refuses such a
    range; so does Vigil now, naming it. A mixed range that can hold (`-10:25`) is kept."""
    with pytest.raises(IntervalError) as e:
        parse_interval({"days_of_month": ["1", days]}, "t")
    assert e.value.field == "t.days_of_month[1]"
    mixed = parse_interval({"days_of_month": ["-10:25"]})
    assert mixed.contains(at("2026-01-23T12:00:00+00:00")) and not mixed.contains(at("2026-01-26T12:00:00+00:00"))
