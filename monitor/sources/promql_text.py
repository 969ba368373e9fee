"""PromQL as text: one label matcher added to every series selector, the longest range
an expression averages over, and queries joined with `or` (`balanced_or`).

A canary compares the same KPI for two versions: `with_matcher(query, "model_version",
"3")` turns `sum(rate(errors_total{svc="a"}[5m])) / sum(rate(requests_total[5m]))` into
`sum(rate(errors_total{svc="a",model_version="3"}[5m])) / sum(rate(requests_total{model_version="3"}[5m]))`.

A small lexer, not a full parser: it knows strings, comments, ranges and subqueries
(`[...]`), label lists after `by`/`without`/`on`/`ignoring`/`group_left`/`group_right`,
function calls (a name before `(`), aggregation operators and keywords (in any case, as
PromQL reads them); every other name,
and every bare `{...}`, is a selector. Selectors inside strings are left alone.
"""
from __future__ import annotations

import contextlib
import re

from monitor.config_types import parse_duration

_NAME = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_NUMBER = re.compile(r"[0-9.][0-9A-Za-z_.]*")
_LABEL_LIST_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right"}
# Lower case: PromQL's keywords are case-insensitive (`BY`, `OR`, `Inf`). `start` and `end`
# are keywords only as `@ start()` / `@ end()` (a name before `(`); alone they are metrics.
_KEYWORDS = {"bool", "offset", "and", "or", "unless", "atan2", "inf", "nan"}
_GROUP_MODIFIERS = {"group_left", "group_right"}  # their label list is optional
_AGGREGATIONS = {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk",
                 "topk", "quantile", "limitk", "limit_ratio"}


class PromQLSyntaxError(ValueError):
    """The expression could not be scanned (an unclosed string, bracket or brace)."""


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _skip_string(q: str, i: int) -> int:
    """Index just past the string literal starting at q[i]."""
    quote = q[i]
    j = i + 1
    while j < len(q):
        if q[j] == "\\" and quote != "`":
            j += 2
            continue
        if q[j] == quote:
            return j + 1
        j += 1
    raise PromQLSyntaxError(f"unclosed string starting at character {i}: {q!r}")


def _close(q: str, i: int, open_: str, close: str) -> int:
    """Index of the bracket closing the one at q[i], skipping strings inside."""
    j = i + 1
    while j < len(q):
        c = q[j]
        if c in "\"'`":
            j = _skip_string(q, j)
            continue
        if c == close:
            return j
        if c == open_:
            raise PromQLSyntaxError(f"nested {open_!r} at character {j}: {q!r}")
        j += 1
    raise PromQLSyntaxError(f"unclosed {open_!r} at character {i}: {q!r}")


def _next_char(q: str, i: int) -> tuple[str, int]:
    while i < len(q) and q[i].isspace():
        i += 1
    return (q[i], i) if i < len(q) else ("", i)


def _with_brace(block: str, matcher: str) -> str:
    """`{a="b"}` -> `{a="b",<matcher>}`."""
    inner = block[1:-1].rstrip()
    if inner.endswith(","):
        inner = inner[:-1]
    return "{" + (f"{inner},{matcher}" if inner.strip() else matcher) + "}"


def with_matcher(query: str, label: str, value: str) -> str:
    """`query` with `label="value"` added to each of its series selectors."""
    matcher = f"{label}={_quote(value)}"
    out: list[str] = []
    i, n = 0, len(query)
    while i < n:
        c = query[i]
        if c in "\"'`":
            j = _skip_string(query, i)
            out.append(query[i:j])
            i = j
        elif c == "#":
            j = query.find("\n", i)
            j = n if j < 0 else j
            out.append(query[i:j])
            i = j
        elif c == "[":
            j = _close(query, i, "[", "]") + 1
            out.append(query[i:j])
            i = j
        elif c == "{":
            j = _close(query, i, "{", "}") + 1
            out.append(_with_brace(query[i:j], matcher))
            i = j
        elif (m := _NAME.match(query, i)) and not (i > 0 and (query[i - 1].isalnum() or query[i - 1] in "._")):
            name = m.group(0)
            i = m.end()
            out.append(name)
            nxt, k = _next_char(query, i)
            word = name.lower()
            if word in _LABEL_LIST_KEYWORDS and nxt == "(":
                j = _close(query, k, "(", ")") + 1
                out.append(query[i:j])
                i = j
            elif word in _KEYWORDS or word in _AGGREGATIONS or word in _GROUP_MODIFIERS or nxt == "(":
                continue
            elif nxt == "{":
                j = _close(query, k, "{", "}") + 1
                out.append(query[i:k] + _with_brace(query[k:j], matcher))
                i = j
            else:
                out.append("{" + matcher + "}")
        else:
            # Numbers and durations (1e3, 5m, 0x1f) are consumed whole so their letters are not names.
            m2 = _NUMBER.match(query, i)
            if m2:
                out.append(m2.group(0))
                i = m2.end()
            else:
                out.append(c)
                i += 1
    return "".join(out)


_DURATION_PART = re.compile(r"(\d+)(ms|y|w|d|h|m|s)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0, "y": 365 * 86400.0}


def _range_seconds(text: str) -> float:
    """A PromQL duration, compound ones too (`1h30m`), in seconds."""
    parts = _DURATION_PART.findall(text)
    if parts and "".join(n + u for n, u in parts) == text:
        return sum(int(n) * _UNIT_S[u] for n, u in parts)
    return parse_duration(text)  # a number of seconds


def longest_range(query: str) -> float:
    """The longest range selector or subquery range in seconds (`rate(x[5m])` -> 300); 0
    when there is none. Per-step values closer than this share data: they are not
    independent points."""
    longest = 0.0
    i = 0
    while i < len(query):
        c = query[i]
        if c in "\"'`":
            i = _skip_string(query, i)
        elif c == "#":  # a comment, to the end of the line
            j = query.find("\n", i)
            i = len(query) if j < 0 else j
        elif c == "[":
            j = _close(query, i, "[", "]")
            inner = query[i + 1:j].split(":")[0].strip()
            with contextlib.suppress(TypeError, ValueError):  # not a duration we know: Prometheus will say
                longest = max(longest, _range_seconds(inner))
            i = j + 1
        else:
            i += 1
    return longest


def balanced_or(parts: list[str]) -> str:
    """`a or b or c ...` parenthesised as a balanced tree: Prometheus evaluates a left-deep
    chain in quadratic time (each `or` rebuilds the left side's label index)."""
    if len(parts) == 1:
        return parts[0]
    mid = len(parts) // 2
    return f"({balanced_or(parts[:mid])}) or ({balanced_or(parts[mid:])})"
