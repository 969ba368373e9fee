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
    (MetricClass.ERRORS, ("error", "err", "errs", "fail", "fault", "exception", "timeout", "5xx", "reject",
                          "drop", "drops", "dropped", "retr", "restart", "oom", "kill", "crash", "panic", "miss",
                          "misses", "missed", "unavailab", "denied", "refused")),
    (MetricClass.SATURATION, ("cpu", "memory", "mem", "heap", "usage", "used", "util", "saturat", "queue",
                              "throttl", "pending", "backlog", "pressure", "swap", "load", "inflight", "gc")),
    (MetricClass.LATENCY, ("latency", "duration", "delay", "responsetime", "elapsed", "wait", "time",
                           "seconds", "s", "ms", "sec", "lag")),
)
# Stems this short match a whole word only ("s" the unit, not "syscall"), and so do these
# ("miss" not "mission", "drop" not "dropout", "err" not "errand").
_WHOLE = 3
_EXACT = frozenset({"err", "errs", "drop", "drops", "dropped", "miss", "misses", "missed"})
# Prometheus naming conventions that override the words: a latency histogram's or
# summary's `_count` counts observations (traffic: `..._seconds_count`,
# `envoy_..._rq_time_count`), and a point in time (`process_start_time_seconds`,
# `node_boot_time_seconds`, `..._timestamp_seconds`, `..._created`) is no latency, unless
# the name also says it is a duration (`kubelet_pod_start_duration_seconds`).
_POINT_IN_TIME = (("start", "time"), ("boot", "time"), ("creation", "time"))
_DURATION = frozenset({"duration", "latency", "delay", "elapsed"})
_BAD = {MetricClass.AVAILABILITY: Direction.DOWN, MetricClass.LATENCY: Direction.UP,
        MetricClass.ERRORS: Direction.UP, MetricClass.SATURATION: Direction.UP,
        MetricClass.UNKNOWN: Direction.BOTH}
# Anomalies of these classes on a callee show up in its callers.
PROPAGATES_UP = frozenset({MetricClass.AVAILABILITY, MetricClass.LATENCY, MetricClass.ERRORS})
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NON_WORD = re.compile(r"[^a-z0-9]+")


def metric_class(name: str, unit: str = "") -> MetricClass:
    """The class of a metric from its name (camelCase and snake_case alike) and unit."""
    named = _words(name)
    if len(named) > 1 and named[-1] == "count" and _by_words(named[:-1] + _words(unit)) is MetricClass.LATENCY:
        return MetricClass.UNKNOWN
    if _point_in_time(named):
        return MetricClass.UNKNOWN
    return _by_words(named + _words(unit))


def _words(text: str) -> list[str]:
    return [w for w in _NON_WORD.split(_CAMEL.sub("_", text).lower()) if w]


def _point_in_time(words: list[str]) -> bool:
    if _DURATION & set(words):
        return False
    pairs = set(zip(words, words[1:], strict=False))
    return "timestamp" in words or (words[-1:] == ["created"]) or any(p in pairs for p in _POINT_IN_TIME)


def _by_words(words: list[str]) -> MetricClass:
    for cls, stems in _WORDS:
        if any(w == s or (len(s) >= _WHOLE and s not in _EXACT and w.startswith(s)) for w in words for s in stems):
            return cls
    return MetricClass.UNKNOWN


_CONCURRENCY = frozenset({"flight", "inflight", "active", "concurrent", "current", "open"})


def is_request_count(name: str) -> bool:
    """Whether a metric counts requests (traffic: `requests_Sum`, `http_requests_total`):
    its name says requests and no class (not `request_errors`, not `request_duration_seconds`)."""
    words = _words(name)
    return (metric_class(name) is MetricClass.UNKNOWN and any(w.startswith("request") for w in words)
            and not _CONCURRENCY & set(words))  # requests in flight: a gauge, not a count


def bad_direction(name: str, unit: str = "") -> Direction:
    """UP, DOWN, or BOTH when the name does not say."""
    return _BAD[metric_class(name, unit)]


def direction_of(cls: MetricClass) -> Direction:
    """Which way is bad for a metric of this class (a class given in config, not inferred)."""
    return _BAD[cls]
