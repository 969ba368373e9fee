"""Label matchers with Alertmanager's semantics: `name="value"`, `name!="value"`,
`name=~"regex"`, `name!~"regex"`; a regex is fully anchored (it must match the whole
value, as `^(?:regex)$`), and a missing label reads as the empty string.

Vigil's alerts carry a few labels that hold several values (an incident's finding
kinds and entities): an equality or regex matcher holds when any value matches, a
negative one when no value does, so `kind="kpi_drop"` selects every incident with a
KPI drop and `kind!="no_data"` every incident without a no-data finding.
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

LabelValue = str | Sequence[str]
Labels = Mapping[str, LabelValue]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MATCHER = re.compile(r'^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$', re.DOTALL)


class MatcherError(ValueError):
    """A matcher that cannot be parsed or compiled; `field` names where it came from."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = message


class MatchOp(StrEnum):
    EQ = "="
    NE = "!="
    RE = "=~"
    NRE = "!~"

    @property
    def is_regex(self) -> bool:
        return self in (MatchOp.RE, MatchOp.NRE)

    @property
    def is_equal(self) -> bool:
        """Alertmanager's `isEqual`: false for the negative operators."""
        return self in (MatchOp.EQ, MatchOp.RE)


@dataclass(frozen=True)
class Matcher:
    name: str
    op: MatchOp
    value: str

    def __post_init__(self) -> None:
        if self.op.is_regex:
            _compile(self.value, self.name)  # refuse a bad regex when the matcher is made, not when used

    def _one(self, value: str) -> bool:
        if self.op.is_regex:
            return _compile(self.value, self.name).fullmatch(value) is not None
        return value == self.value

    def matches(self, labels: Labels) -> bool:
        raw = labels.get(self.name, "")
        values = [raw] if isinstance(raw, str) else list(raw) or [""]
        hit = any(self._one(v) for v in values)
        return hit if self.op.is_equal else not hit

    def __str__(self) -> str:
        return f"{self.name}{self.op.value}{_quote(self.value)}"

    def to_api(self) -> dict[str, Any]:
        """Alertmanager API v2's matcher object."""
        return {"name": self.name, "value": self.value, "isRegex": self.op.is_regex, "isEqual": self.op.is_equal}


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


_COMPILED: dict[str, re.Pattern[str]] = {}


def _compile(pattern: str, name: str) -> re.Pattern[str]:
    got = _COMPILED.get(pattern)
    if got is None:
        try:
            got = re.compile(f"(?:{pattern})")
        except re.error as e:
            raise MatcherError(name, f"invalid regular expression {pattern!r}: {e}") from None
        if len(_COMPILED) < 4096:
            _COMPILED[pattern] = got
    return got


_REPEATS = ("MAX_REPEAT", "MIN_REPEAT")


def check_backtracking(m: Matcher, field: str) -> None:
    """Refuse a new matcher whose regex repeats a group that itself repeats without bound
    (`(.*)*`, `(\\w+)+`). Python's engine backtracks (Alertmanager's RE2 does not): `(.*)*x`
    against a 40-character label takes hours, and every cycle checking the silence waits.
    For matchers people make now (silences); one already stored or configured is left be."""
    if m.op.is_regex and _nested_repeat(re._parser.parse(m.value)):  # type: ignore[attr-defined]
        raise MatcherError(field, f"regular expression {m.value!r} repeats a group that itself repeats without "
                                  "bound, such as (.*)* or (\\w+)+: matching can take hours; drop the outer "
                                  "repetition")


def _nested_repeat(parsed: Any, inside: bool = False) -> bool:
    """Whether an unbounded repetition sits inside another repetition (star height 2), the
    shape whose backtracking grows exponentially with the label's length."""
    for op, av in parsed:
        if str(op) in _REPEATS:
            _, high, sub = av
            if (inside and high == re._constants.MAXREPEAT  # type: ignore[attr-defined]
                    or _nested_repeat(sub, inside or high > 1)):
                return True
        elif str(op) == "SUBPATTERN":
            if _nested_repeat(av[-1], inside):
                return True
        elif str(op) == "BRANCH" and any(_nested_repeat(p, inside) for p in av[1]):
            return True
    return False


_UNESCAPED = {"\\": "\\", '"': '"', "n": "\n"}


def _unquote(raw: str, field: str) -> str:
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
        # Alertmanager's escapes: \" (or the quote used), \\ and \n; any other backslash is
        # kept, so a regex's `\d` or `\.` means what it says rather than `d` or any character.
        quote = raw[0]
        return re.sub(r"\\(.)", lambda m: _UNESCAPED.get(m.group(1), "\\" + m.group(1))
                      if m.group(1) != quote else quote, raw[1:-1], flags=re.DOTALL)
    if any(c in raw for c in "\"'"):
        raise MatcherError(field, f"unbalanced quotes in value {raw!r}")
    return raw


def parse_matcher(text: str, field: str = "matcher") -> Matcher:
    """`model="recommender"`, `severity=~"warning|critical"`, `kind!=no_data` (quotes optional)."""
    m = _MATCHER.match(text)
    if not m:
        raise MatcherError(field, f"expected NAME OP VALUE with OP one of =, !=, =~, !~ "
                                  f'(e.g. model="recommender"), got {text!r}')
    name, op, raw = m.groups()
    return _made(name, MatchOp(op), _unquote(raw, field), field)


def _made(name: str, op: MatchOp, value: str, field: str) -> Matcher:
    try:
        return Matcher(name, op, value)
    except MatcherError as e:  # a bad regex: blame the matcher where it was given
        raise MatcherError(field, e.reason) from None


def matcher_from_api(obj: Mapping[str, Any], field: str = "matcher") -> Matcher:
    """Alertmanager API v2's `{name, value, isRegex, isEqual}` (isEqual defaults to true)."""
    name, value = obj.get("name"), obj.get("value")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise MatcherError(f"{field}.name", f"expected a label name ([A-Za-z_][A-Za-z0-9_]*), got {name!r}")
    if not isinstance(value, str):
        raise MatcherError(f"{field}.value", f"expected a string, got {value!r}")
    regex, equal = bool(obj.get("isRegex", False)), bool(obj.get("isEqual", True))
    op = {(False, True): MatchOp.EQ, (False, False): MatchOp.NE, (True, True): MatchOp.RE,
          (True, False): MatchOp.NRE}[(regex, equal)]
    return _made(name, op, value, field)


def matches_all(matchers: Sequence[Matcher], labels: Labels) -> bool:
    return all(m.matches(labels) for m in matchers)


def label_key(labels: Labels, names: Sequence[str]) -> tuple[tuple[str, ...], ...]:
    """The values of `names`, comparable across alerts (Alertmanager's `equal`, `group_by`)."""
    out = []
    for n in names:
        raw = labels.get(n, "")
        out.append((raw,) if isinstance(raw, str) else tuple(sorted(set(raw))) or ("",))
    return tuple(out)
