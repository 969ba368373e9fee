"""Label matchers with Alertmanager's semantics: `name="value"`, `name!="value"`,
`name=~"regex"`, `name!~"regex"`; a regex is fully anchored (it must match the whole
value: Alertmanager compiles `^(?:` + regex + `)$`), and a missing label reads as the empty
string. Regexes are RE2's, as Alertmanager's (Go's regexp): matching takes time linear in
the label's length whatever the regex, so no silence or rule can stall a cycle; and RE2's
meanings hold (`\\d`, `\\w`, `\\s` are ASCII; `.` is any character but a newline; `(?i)`
folds Unicode case). Python-only syntax (backreferences, lookaround, possessive or atomic
groups) is refused naming the matcher. A silence stored by an older Vigil, made in
Python's syntax, is matched as it was, by Python's engine under a time bound
(`matcher_from_stored`).

Vigil's alerts carry a few labels that hold several values (an incident's finding
kinds and entities): an equality or regex matcher holds when any value matches, a
negative one when no value does, so `kind="kpi_drop"` selects every incident with a
KPI drop and `kind!="no_data"` every incident without a no-data finding.
"""
from __future__ import annotations

import functools
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import re2
import regex

from detectors.anchored_regex import anchored, reason

LabelValue = str | Sequence[str]
Labels = Mapping[str, LabelValue]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_log = logging.getLogger(__name__)
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
    # Why RE2 refuses this regex, for a silence stored by an older Vigil in Python's syntax
    # (matcher_from_stored); None for every matcher made now.
    legacy: str | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.op.is_regex and self.legacy is None:
            _compile(self.value, self.name)  # refuse a bad regex when the matcher is made, not when used

    def _one(self, value: str) -> bool:
        if self.op.is_regex:
            if len(value) <= _MEMO_VALUE_CHARS:
                return _memo_hit(self.value, value)
            return _compile(self.value, self.name).search(_utf8(value)) is not None
        return value == self.value

    def matches(self, labels: Labels) -> bool:
        raw = labels.get(self.name, "")
        values = [raw] if isinstance(raw, str) else list(raw) or [""]
        if self.legacy is not None:
            return _legacy_holds(self, values)
        hit = any(self._one(v) for v in values)
        return hit if self.op.is_equal else not hit

    @property
    def problem(self) -> str | None:
        """What is wrong with a stored legacy matcher, for the silence's listing; None if nothing."""
        if self.legacy is None:
            return None
        if _legacy_pattern(self.value) is None or self.value in _GAVE_UP:
            return (f"{self.legacy}; Python's engine could not match it either (it refused it, or a match took "
                    f"over {LEGACY_BOUND_S} s of CPU), so it holds for no alert: expire it and make it again in "
                    "RE2 syntax")
        return (f"{self.legacy}; made by an older Vigil, it is matched with Python's engine as before, at most "
                f"{LEGACY_BOUND_S} s of CPU per label value (longer: it holds for no alert from then on); expire it "
                "and make it again in RE2 syntax")

    def __str__(self) -> str:
        return f"{self.name}{self.op.value}{_quote(self.value)}"

    def to_api(self) -> dict[str, Any]:
        """Alertmanager API v2's matcher object."""
        return {"name": self.name, "value": self.value, "isRegex": self.op.is_regex, "isEqual": self.op.is_equal}


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


# Refusals are remembered (a RE2 compile, `anchored`, is cached once it succeeds): a silence
# stored in Python's syntax is read again by every cycle, and RE2 takes up to a second to
# refuse one too large to compile (`(?i)\\pL{1000}`).
_REFUSED: dict[str, str] = {}


def _compile(pattern: str, name: str) -> re2._Regexp:
    if pattern in _REFUSED:
        raise MatcherError(name, _REFUSED[pattern])
    try:
        return _re2(pattern, name)
    except MatcherError as e:
        if len(_REFUSED) < 4096:
            _REFUSED[pattern] = e.reason
        raise


def _re2(pattern: str, name: str) -> re2._Regexp:
    refused = f"invalid regular expression {pattern!r} (RE2 syntax, as Alertmanager)"
    if _any_byte(pattern):
        raise MatcherError(name, f"{refused}: \\C (any byte) is not supported")
    try:
        return anchored(pattern)
    except re2.error as e:
        raise MatcherError(name, f"{refused}: {reason(pattern, e)}") from None
    except UnicodeEncodeError:
        raise MatcherError(name, f"invalid regular expression {pattern!r}: it holds a lone surrogate; "
                                 "expected UTF-8 text, as Alertmanager") from None


@functools.lru_cache(maxsize=4096)  # asked before each compile, as cheap as a lookup once asked
def _any_byte(pattern: str) -> bool:
    """Whether the regex holds `\\C` (any one byte, which splits a UTF-8 character): C++ RE2
    takes it, Go's regexp refuses it. Escapes are read in order, and `\\Q...\\E` is literal
    text, where `\\C` is a backslash and a C (Go takes it there)."""
    i = 0
    while i < len(pattern) - 1:
        if pattern[i] != "\\":
            i += 1
        elif pattern[i + 1] == "Q":
            end = pattern.find("\\E", i + 2)
            i = len(pattern) if end < 0 else end + 2
        elif pattern[i + 1] == "C":
            return True
        else:
            i += 2
    return False


# The RE2 wrapper costs about 3 us a match (Python's re: 0.4 us), and every cycle matches the
# same short labels (models, severities, kinds) against the same silences and rules again.
_MEMO_VALUE_CHARS = 256


@functools.lru_cache(maxsize=16384)
def _memo_hit(pattern: str, value: str) -> bool:
    return _compile(pattern, "matcher").search(_utf8(value)) is not None


def _utf8(value: str) -> str:
    """A label value as Go reads it: a lone surrogate (a JSON `\\ud800`, never valid UTF-8)
    reads as U+FFFD, as Go reads an invalid byte, rather than failing the cycle."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return value


LEGACY_BOUND_S = 0.05  # of CPU: the regex module's timeout (0.35 s of wall time on 2 cores shared 7 ways)
_LEGACY: dict[str, regex.Pattern[str] | None] = {}
_GAVE_UP: set[str] = set()  # legacy regexes that once took longer than the bound


def _legacy_pattern(pattern: str) -> regex.Pattern[str] | None:
    """Python's syntax and meaning (the `regex` module's version 0 is `re`'s), compiled once;
    None if even that refuses it."""
    if pattern not in _LEGACY:
        try:
            _LEGACY[pattern] = regex.compile(f"(?:{pattern})", regex.VERSION0)
        except regex.error:
            _LEGACY[pattern] = None
    return _LEGACY[pattern]


def _legacy_holds(m: Matcher, values: Sequence[str]) -> bool:
    """A stored matcher in Python's syntax, matched as before but never for longer than the
    bound: a match that takes longer (a backtracking regex) makes the matcher hold for no
    alert from then on, so its silence mutes nothing (a page, never a silent all-clear)."""
    got = _legacy_pattern(m.value)
    if got is None or m.value in _GAVE_UP:
        return False
    try:
        hit = any(got.fullmatch(v, timeout=LEGACY_BOUND_S) is not None for v in values)
    except TimeoutError:
        _GAVE_UP.add(m.value)
        _log.warning("silence matcher %s (Python syntax, stored by an older Vigil) took over %s s on a label: "
                     "it now holds for no alert; expire its silence and make it again in RE2 syntax", m, LEGACY_BOUND_S)
        return False
    return hit if m.op.is_equal else not hit


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
    return _made(name, _api_op(obj), value, field)


def _api_op(obj: Mapping[str, Any]) -> MatchOp:
    is_regex, equal = bool(obj.get("isRegex", False)), bool(obj.get("isEqual", True))
    return {(False, True): MatchOp.EQ, (False, False): MatchOp.NE, (True, True): MatchOp.RE,
            (True, False): MatchOp.NRE}[(is_regex, equal)]


def matcher_from_stored(obj: Mapping[str, Any], field: str = "matcher") -> Matcher:
    """A matcher as any version of Vigil stored it. One whose regex RE2 refuses was made
    before Vigil used RE2, in Python's syntax (a backreference, a lookahead): refusing it
    would fail every cycle, and dropping it would page the people who silenced; it is kept,
    matched by Python's engine under a time bound, and its silence lists the problem."""
    try:
        return matcher_from_api(obj, field)
    except MatcherError as e:
        if e.field != field or not obj.get("isRegex", False):  # a bad name, not a regex RE2 refuses
            raise
        if obj["value"] not in _LEGACY:  # once per regex, not every cycle that reads the silence
            _log.warning("silence matcher %s: %s; matched with Python's engine, bounded to %s s per label",
                         obj.get("name"), e.reason, LEGACY_BOUND_S)
            _legacy_pattern(obj["value"])
        return Matcher(obj["name"], _api_op(obj), obj["value"], legacy=e.reason)


def matches_all(matchers: Sequence[Matcher], labels: Labels) -> bool:
    return all(m.matches(labels) for m in matchers)


def label_key(labels: Labels, names: Sequence[str]) -> tuple[tuple[str, ...], ...]:
    """The values of `names`, comparable across alerts (Alertmanager's `equal`, `group_by`)."""
    out = []
    for n in names:
        raw = labels.get(n, "")
        out.append((raw,) if isinstance(raw, str) else tuple(sorted(set(raw))) or ("",))
    return tuple(out)
