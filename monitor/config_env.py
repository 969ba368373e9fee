"""`${VAR}` references in vigil.yaml, resolved from the environment before validation.

    ${NAME}           required: unset or empty is an error naming the field and the variable
    ${NAME:-default}  `default` when NAME is unset or empty
    ${NAME:-}         optional: when NAME is unset or empty the key is left out, so the
                      field takes its default (None for a secret); inside a longer string
                      it is replaced by nothing
    $${               a literal `${`

A value that is one whole reference becomes an `EnvValue`, which is how the secret fields
tell a reference from a token pasted into the file. A required reference fails loudly
because the quiet alternative (a misspelled Slack token read as "no token") sends every
alert to a local file.
"""
from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

Loc = tuple[str | int, ...]

_TOKEN = re.compile(r"\$\$\{|\$\{(?P<body>[^{}]*)\}|\$\{")
_BODY = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>.*))?$", re.DOTALL)
_SYNTAX = "${NAME}, ${NAME:-default} or ${NAME:-} (write $${ for a literal ${)"


@dataclass(frozen=True)
class EnvRef:
    name: str
    default: str | None  # None: required; "": optional


class EnvValue(str):
    """A string that was one whole `${VAR}` reference in the file."""

    ref: EnvRef
    from_default: bool  # the value is the reference's default, written in the file

    def __new__(cls, value: str, ref: EnvRef, from_default: bool) -> EnvValue:
        obj = super().__new__(cls, value)
        obj.ref, obj.from_default = ref, from_default
        return obj


class Unset(ValueError):
    """A required reference whose variable is unset or empty (its message says so)."""

    def __init__(self, message: str, name: str) -> None:
        super().__init__(message)
        self.name = name


class _Left(Exception):
    """An optional reference whose variable is unset: the key is left out."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


@dataclass
class EnvResolution:
    data: Any
    errors: list[tuple[Loc, str]] = field(default_factory=list)
    left_out: dict[Loc, str] = field(default_factory=dict)  # key -> the unset variable that removed it
    unset: set[str] = field(default_factory=set)  # the variables of the required references in `errors`


def parse_ref(body: str) -> EnvRef:
    m = _BODY.match(body)
    if not m:
        # The text is not echoed: it may be a token pasted between the braces.
        raise ValueError(f"malformed reference: expected {_SYNTAX}")
    return EnvRef(m.group("name"), m.group("default"))


def missing_message(ref: EnvRef, environ: Mapping[str, str]) -> str:
    """Names the variable, a set variable with a similar name, and the optional form."""
    state = "is empty" if ref.name in environ else "is not set"
    upper = {k.upper(): k for k in environ}
    close = difflib.get_close_matches(ref.name.upper(), list(upper), n=1, cutoff=0.75)
    hint = f"; did you mean ${{{upper[close[0]]}}}?" if close and upper[close[0]] != ref.name else ""
    return (f"environment variable {ref.name} {state}{hint} "
            f"(write ${{{ref.name}:-}} if this field is optional)")


def lookup(ref: EnvRef, environ: Mapping[str, str]) -> EnvValue:
    """The variable's value; its default when unset or empty; `_Left` for `${NAME:-}`."""
    value = environ.get(ref.name)
    if value:
        return EnvValue(value, ref, from_default=False)
    if ref.default is None:
        raise Unset(missing_message(ref, environ), ref.name)
    if ref.default == "":
        raise _Left(ref.name)
    return EnvValue(ref.default, ref, from_default=True)


def resolve_string(text: str, environ: Mapping[str, str]) -> str:
    """`text` with its references replaced; an `EnvValue` when it is one whole reference."""
    if "${" not in text:
        return text
    whole = _TOKEN.fullmatch(text)
    if whole and whole.group("body") is not None:
        return lookup(parse_ref(whole.group("body")), environ)

    def one(m: re.Match[str]) -> str:
        if m.group(0) == "$${":
            return "${"
        if m.group("body") is None:
            raise ValueError(f"unclosed or nested ${{: expected {_SYNTAX}")
        try:
            return str(lookup(parse_ref(m.group("body")), environ))
        except _Left:
            return ""

    return _TOKEN.sub(one, text)


def resolve_tree(data: Any, environ: Mapping[str, str] | None = None) -> EnvResolution:
    """Every string value of the parsed YAML resolved (keys are left alone); every problem
    collected with its location, so `check-config` reports them all at once."""
    out = EnvResolution(None)
    out.data = _resolve(data, (), os.environ if environ is None else environ, out)
    return out


_LEFT_OUT = object()


def _resolve(node: Any, loc: Loc, environ: Mapping[str, str], out: EnvResolution) -> Any:
    if isinstance(node, str):
        return resolve_string(node, environ)
    if isinstance(node, dict):
        pairs = ((k, _item(v, (*loc, k), environ, out)) for k, v in node.items())
        return {k: v for k, v in pairs if v is not _LEFT_OUT}
    if isinstance(node, list):
        values = (_item(v, (*loc, i), environ, out) for i, v in enumerate(node))
        return [v for v in values if v is not _LEFT_OUT]
    return node


def _item(value: Any, loc: Loc, environ: Mapping[str, str], out: EnvResolution) -> Any:
    try:
        return _resolve(value, loc, environ, out)
    except _Left as e:
        out.left_out[loc] = e.name
        return _LEFT_OUT
    except ValueError as e:
        # Kept as written, so the rest of the file validates with its shape (and indexes) intact.
        out.errors.append((loc, str(e)))
        if isinstance(e, Unset):
            out.unset.add(e.name)
        return value
