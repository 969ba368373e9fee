"""Regexes an operator writes, compiled once to match a whole text with RE2 (Go's syntax
and meanings, as Prometheus and Alertmanager): the label matchers of silences, routes and
rules (alerts/matchers.py) and the Prometheus warnings said to be harmless
(monitor/sources/prometheus_warnings.py). One compile, one set of options and one cache for
both; each caller says in its own words why a regex is refused. It lives in the lowest
layer so that both may import it."""
from __future__ import annotations

import functools

import re2

OPTIONS = re2.Options()
OPTIONS.log_errors = False  # a refused regex is an error naming its field, not a line on stderr


@functools.lru_cache(maxsize=4096)
def anchored(pattern: str) -> re2._Regexp:
    """`pattern` compiled to match a whole text, anchored as Prometheus and Alertmanager
    anchor theirs (`^(?:` + pattern + `)$`): "store .* down" never matches by a part of a
    longer text. Raises re2.error when RE2 refuses it, UnicodeEncodeError when it holds a
    lone surrogate (neither is cached: the caller says why, naming its field)."""
    return re2.compile(f"^(?:{pattern})$", OPTIONS)


def reason(pattern: str, e: re2.error) -> str:
    """RE2's reason for refusing `pattern`, quoting the regex as the operator wrote it rather
    than as wrapped (`missing ): (a`, not `b'missing ): ^(?:(a)$'`)."""
    try:
        re2.compile(pattern, OPTIONS)
    except re2.error as bare:
        e = bare
    raw = e.args[0] if e.args else ""
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
