"""Which way is bad for a metric, from the words in its name and unit: never from a
service name, never from a list of known metrics.

Availability and success fall when something breaks; latency, errors and saturation
rise. A metric whose name says neither (request counts, bytes, syscalls) may move
either way for an ordinary reason (traffic), so both directions count, with less weight.
The class also says which anomalies travel *up* a call chain: a callee's latency,
errors and lost availability show in its callers' latency, errors and availability;
a caller's CPU, memory or traffic does not come from its callee.
"""
from __future__ import annotations

import re
from enum import StrEnum

from detectors.records import Direction


class MetricClass(StrEnum):
    AVAILABILITY = "availability"  # bad when it falls
    LATENCY = "latency"
    ERRORS = "errors"
    SATURATION = "saturation"
    UNKNOWN = "unknown"  # bad either way


# A name is split into words (camelCase, snake_case, units in brackets); a class matches
# when a word starts with one of its stems. Order matters: "uptime" is availability
# before "time" is latency; "errors" before "rate" (which says nothing).
_WORDS: tuple[tuple[MetricClass, tuple[str, ...]], ...] = (
    (MetricClass.AVAILABILITY, ("availab", "success", "uptime", "apdex", "healthy", "hit", "up")),
    (MetricClass.ERRORS, ("error", "err", "fail", "fault", "exception", "timeout", "5xx", "reject", "drop",
                          "retr", "restart", "oom", "kill", "crash", "panic", "miss", "unavailab", "denied",
                          "refused")),
    (MetricClass.SATURATION, ("cpu", "memory", "mem", "heap", "usage", "used", "util", "saturat", "queue",
                              "throttl", "pending", "backlog", "pressure", "swap", "load", "inflight", "gc")),
    (MetricClass.LATENCY, ("latency", "duration", "delay", "responsetime", "elapsed", "wait", "time",
                           "seconds", "s", "ms", "sec", "lag")),
)
# Stems this short match a whole word only ("s" the unit, not "syscall").
_WHOLE = 3
# Prometheus naming conventions that override the words: a histogram's or summary's
# `<name>_<unit>_count` counts observations (traffic, whatever the unit measures), and a
# point in time (`process_start_time_seconds`, `..._timestamp_seconds`) is no latency.
_OBSERVED_UNITS = frozenset({"seconds", "milliseconds", "microseconds", "ms", "bytes"})
_POINT_IN_TIME = frozenset({"timestamp", "start", "created", "boot"})
_BAD = {MetricClass.AVAILABILITY: Direction.DOWN, MetricClass.LATENCY: Direction.UP,
        MetricClass.ERRORS: Direction.UP, MetricClass.SATURATION: Direction.UP,
        MetricClass.UNKNOWN: Direction.BOTH}
# Anomalies of these classes on a callee show up in its callers.
PROPAGATES_UP = frozenset({MetricClass.AVAILABILITY, MetricClass.LATENCY, MetricClass.ERRORS})
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NON_WORD = re.compile(r"[^a-z0-9]+")


def metric_class(name: str, unit: str = "") -> MetricClass:
    """The class of a metric from its name (camelCase and snake_case alike) and unit."""
    words = [w for w in _NON_WORD.split(_CAMEL.sub("_", f"{name} {unit}").lower()) if w]
    named = [w for w in _NON_WORD.split(name.lower()) if w]
    if (named[-2:-1] and named[-1] == "count" and named[-2] in _OBSERVED_UNITS) or _POINT_IN_TIME & set(words):
        return MetricClass.UNKNOWN
    for cls, stems in _WORDS:
        if any(w == s or (len(s) >= _WHOLE and w.startswith(s)) for w in words for s in stems):
            return cls
    return MetricClass.UNKNOWN


def bad_direction(name: str, unit: str = "") -> Direction:
    """UP, DOWN, or BOTH when the name does not say."""
    return _BAD[metric_class(name, unit)]


def direction_of(cls: MetricClass) -> Direction:
    """Which way is bad for a metric of this class (a class given in config, not inferred)."""
    return _BAD[cls]
