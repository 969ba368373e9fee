"""Which models an API token may act on: `api.tokens[].models`, shell-style patterns
(`team-a-*`, `fraud-v?`, `[ab]-ranker`; a name without `*`, `?` or `[` is that name
only, as in a receiver's `models`), matched case-sensitively against the whole name.

A write that names a model (rollback, ack, an incident's silence, samples, labels) is
allowed when the model matches one pattern. A silence names no model: it is allowed when
one of its matchers confines it to the scope, `model="x"` with x covered, or
`model=~"r"` whose every match is covered. Deciding that for any regex is a question on
automata; `confinement_gap` answers it for the regexes people write for a team (names
joined with `|`, a prefix followed by `.*`) and says which to write when it cannot tell.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from alerts.matchers import Matcher, MatchOp
from monitor.config import VigilConfig
from monitor.config_auth import ApiTokenConfig

GLOB_CHARS = frozenset("*?[")
MAX_EXPANSIONS = 200  # alternatives a silence regex may expand to before Vigil says it cannot tell
# One expansion of a regex: (text, open); open means "text followed by anything".
_Piece = tuple[str, bool]


@dataclass(frozen=True)
class ModelScope:
    """A token's model patterns; an empty tuple is never built (`models` absent: no scope)."""

    patterns: tuple[str, ...]

    def covers(self, model: str) -> bool:
        return any(fnmatchcase(model, p) for p in self.patterns)

    def __str__(self) -> str:
        return ", ".join(self.patterns)

    def _covers_prefix(self, prefix: str) -> bool:
        """Whether every name beginning with `prefix` is covered: a pattern `G*` covers them
        all when some beginning of `prefix` matches G (whatever follows, the `*` takes)."""
        return any(p.endswith("*") and any(fnmatchcase(prefix[:k], p[:-1]) for k in range(len(prefix) + 1))
                   for p in self.patterns)

    def confinement_gap(self, matchers: Sequence[Matcher]) -> str | None:
        """None when the matchers (all of which must hold) confine a silence to covered
        models; else why not, in words that say what to write instead."""
        model_matchers = [m for m in matchers if m.name == "model" and m.op in (MatchOp.EQ, MatchOp.RE)]
        if not model_matchers:
            return (f'it has no model="..." or model=~"..." matcher, so it would mute models outside {self} '
                    "(and alerts of no model, such as SourceDown)")
        reasons = []
        for m in model_matchers:
            reason = self._gap(m)
            if reason is None:
                return None
            reasons.append(reason)
        return "; ".join(reasons)

    def _gap(self, m: Matcher) -> str | None:
        if m.op == MatchOp.EQ:
            return None if self.covers(m.value) else f'{m} names a model outside {self}'
        advice = ('use model="name" matchers, names joined with | (model=~"a|b") or a prefix a pattern covers '
                  '(model=~"team-a-.*" for team-a-*)')
        pieces = regex_pieces(m.value)
        if pieces is None:
            return f"Vigil cannot tell that every name {m} matches is within {self}: {advice}"
        for text, open_ in pieces:
            if not open_ and not self.covers(text):
                return f"{m} matches {text!r}, outside {self}"
            if open_ and not self._covers_prefix(text):
                # Read as "text, then anything": more than the regex may match, never less.
                read = f"any name beginning {text!r}" if text else "any name"
                return f"Vigil reads {m} as {read}, not all within {self}: {advice}"
        return None


def scope_of(patterns: Sequence[str] | None) -> ModelScope | None:
    return None if patterns is None else ModelScope(tuple(patterns))


def regex_pieces(pattern: str) -> list[_Piece] | None:
    """What a fully anchored regex matches, as texts that are matched exactly or followed by
    anything: never less than the regex matches (an element Vigil does not follow turns
    the rest into "anything", which holds more), so a scope that covers the pieces covers
    the regex. None when there are too many alternatives to list."""
    if "[:" in pattern:
        # `[[:alpha:]]` is a letter to RE2 and Alertmanager, but a set of `[:alph` then `]`
        # to Python's parser: its pieces would not be what a silence matches under RE2.
        return None
    try:  # as alerts/matchers.py compiles it, so the parse is of the same regex
        parsed = re._parser.parse(f"(?:{pattern})")  # type: ignore[attr-defined]
    except re.error:
        return None
    if parsed.state.flags & re.IGNORECASE:  # `team-a-x` would match TEAM-A-X too
        return None
    return _sequence(list(parsed), [("", False)])


def _sequence(items: list[Any], pieces: list[_Piece] | None) -> list[_Piece] | None:
    for op, av in items:
        if pieces is None:
            return None
        name = str(op)
        if name == "AT":  # an anchor matches no character (fullmatch anchors anyway)
            continue
        if name == "LITERAL":
            pieces = _extend(pieces, [chr(av)])
        elif name == "IN" and av and all(str(o) == "LITERAL" for o, _ in av):
            pieces = _extend(pieces, [chr(v) for _, v in av])
        elif name == "SUBPATTERN" and av[1] & re.IGNORECASE:  # (?i:...): case-folded, not these texts
            return None
        elif name == "SUBPATTERN":
            pieces = _sequence(list(av[-1]), pieces)
        elif name == "BRANCH":
            pieces = _branches(av[1], pieces)
        elif name in ("MAX_REPEAT", "MIN_REPEAT") and av[0] == av[1] == 1:
            pieces = _sequence(list(av[2]), pieces)
        else:  # a class, a repetition, a lookaround...: from here on, anything
            pieces = [(text, True) for text, _ in pieces]
        if pieces is not None and len(pieces) > MAX_EXPANSIONS:
            return None
    return pieces


def _extend(pieces: list[_Piece], chars: list[str]) -> list[_Piece]:
    return [(text if open_ else text + c, open_) for text, open_ in pieces for c in (chars if not open_ else [""])]


def _branches(alternatives: list[Any], pieces: list[_Piece]) -> list[_Piece] | None:
    out: list[_Piece] = []
    for alt in alternatives:
        got = _sequence(list(alt), pieces)
        if got is None:
            return None
        out += got
    return out


def scope_warnings(config: VigilConfig, file_tokens: Sequence[tuple[str, ApiTokenConfig]] = ()
                   ) -> list[tuple[tuple[str | int, ...], str]]:
    """What `vigil check-config` warns about in `api.tokens[].models` and in the models of
    `file_tokens` (api.tokens_file's, each named by its place in the file, `tokens.txt:3`): a
    pattern (`*`, `?`, `[`) no configured model matches, likely a typo (`taem-a-*`). A plain
    name is left be: it may name a model yet to come, or one just removed."""
    names = [m.name for m in config.models]
    shown = ", ".join(names[:5]) + (f", ... ({len(names)} in all)" if len(names) > 5 else "")  # fleets of 1,000
    given: list[tuple[tuple[str | int, ...], str, ApiTokenConfig]] = [
        (("api", "tokens", i, "models"), f"api.tokens[{i}]", t) for i, t in enumerate(config.api.tokens)]
    given += [(("api", "tokens_file"), where, t) for where, t in file_tokens]  # the config's line: the file's key
    out: list[tuple[tuple[str | int, ...], str]] = []
    for loc, where, t in given:
        for j, p in enumerate(t.models or []):
            if GLOB_CHARS & set(p) and not any(fnmatchcase(n, p) for n in names):
                out.append(((*loc, j) if loc[-1] == "models" else loc,
                            f"{where}({t.name}).models[{j}]: {p!r} matches none of the configured models "
                            f"({shown}): a typo? (not an error: it may be for models yet to come)"))
    return out
