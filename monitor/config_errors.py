"""`ConfigError` and how a pydantic error becomes a line a person can act on:

    vigil.yaml:14: models[0](recommender).polcy: unknown key; did you mean 'policy'?

the file and line (when the config came from a file), the field path as written in the
YAML (with each list item's `name`), and what was expected.
"""
from __future__ import annotations

import difflib
import re
import types
from collections.abc import Sequence
from typing import Annotated, Any, NamedTuple, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic_core import ErrorDetails

from monitor.config_types import secret_value
from monitor.redact import redact

Loc = tuple[str | int, ...]

_SECRET_FIELDS = {"bot_token", "token", "signing_secret", "bearer_token"}
# Where the secret itself is easily pasted by mistake: `token_sha256: <the token>`,
# `routing_key_env: <the key>`. Their values are never echoed either.
_SECRET_SUFFIXES = ("_sha256", "_env")
_INTERNAL_FIELDS = {"base_dir"}  # set by load_config, never written in the file
_USERINFO = re.compile(r"//[^/@\s]*@")


class ConfigIssue(NamedTuple):
    path: str
    message: str
    line: int | None = None


class ConfigError(Exception):
    """The configuration is invalid; `errors` holds (field path, message) pairs and
    `issues` the same with the line in the file, when known."""

    def __init__(self, errors: Sequence[tuple[str, str] | ConfigIssue], source: str = "config") -> None:
        self.issues = [ConfigIssue(*e) for e in errors]
        self.errors = [(i.path, i.message) for i in self.issues]
        self.source = source
        lines = "\n".join(f"  {render(i, source)}" for i in self.issues)
        super().__init__(f"{source}: {len(self.issues)} error(s)\n{lines}")


def render(issue: ConfigIssue, source: str) -> str:
    """`file:line: path: message`, leaving out what is unknown."""
    where = [f"{source}:{issue.line}"] if issue.line is not None else []
    return ": ".join([*where, *([issue.path] if issue.path else []), issue.message])


def clean_loc(loc: Sequence[Any], data: Any) -> Loc:
    """pydantic's location as a path in the YAML: without its validator and union-member
    parts, nor the `kind` tag of a discriminated union (not a key anyone wrote)."""
    out: list[str | int] = []
    node = data
    for part in loc:
        if isinstance(part, str) and (part.startswith("function-") or "[" in part):
            continue
        if isinstance(node, dict) and part not in node and node.get("kind") == part:
            continue
        if isinstance(node, (str, int, float)) and isinstance(part, str):
            continue  # a union member's tag (`bool`, `constrained-int`): nothing is written under a value
        out.append(part)
        node = _child(node, part)
    return tuple(out)


def format_path(loc: Loc, data: Any) -> str:
    """('models', 0, 'kpis', 1, 'query') -> models[0](recommender).kpis[1](ctr).query"""
    out = ""
    node = data
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            node = node[part] if isinstance(node, list) and 0 <= part < len(node) else None
            if isinstance(node, dict) and isinstance(node.get("name"), str):
                out += f"({node['name']})"
        else:
            out += ("." if out else "") + str(part)
            node = node.get(part) if isinstance(node, dict) else None
    return out or "(top level)"


def line_of(loc: Loc, lines: dict[Loc, int]) -> int | None:
    """The line of the deepest key of `loc` written in the file (a missing key: its parent's)."""
    for n in range(len(loc), 0, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return None


def describe(err: ErrorDetails, loc: Loc, root: type[BaseModel], data: Any) -> str:
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        return unknown_key(loc, root, data)
    if err["type"] == "missing":
        return "required field is missing"
    if is_secret(root, loc, data):
        if str(loc[-1]).endswith("_sha256") and err["type"] == "string_pattern_mismatch":
            return "expected 64 hex digits, the sha256 `vigil token hash` prints (not the token itself)"
        return msg  # never echo what may be a real secret
    if "input" in err and not isinstance(err["input"], (dict, list)):
        # A URL's user:password stays out, and so do a query's ?api_key=... and tokens (redact).
        shown = redact(_USERINFO.sub("//***@", repr(err["input"])))
        return msg if msg.endswith(f"got {shown}") else f"{msg} (got {shown})"
    return msg


def unknown_key(loc: Loc, root: type[BaseModel], data: Any) -> str:
    known = [f for f in fields_at(root, loc[:-1], data) if f not in _INTERNAL_FIELDS]
    close = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
    if close:
        return f"unknown key; did you mean {close[0]!r}?"
    return f"unknown key; expected one of: {', '.join(known)}" if known else "unknown key"


def model_at(root: type[BaseModel], loc: Loc, data: Any) -> type[BaseModel] | None:
    """The model whose keys `loc` names (walking list items, optionals and the
    discriminated unions along the way, the latter by the `kind` written in the data)."""
    tp: Any = root
    node = data
    for part in loc:
        tp = _pick(tp, node)
        if isinstance(tp, type) and issubclass(tp, BaseModel) and part in tp.model_fields:
            tp = tp.model_fields[part].annotation
        elif get_origin(tp) is list and isinstance(part, int):
            tp = get_args(tp)[0]
        elif get_origin(tp) is dict:
            tp = get_args(tp)[1]
        else:
            return None
        node = _child(node, part)
    tp = _pick(tp, node)
    return tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None


def fields_at(root: type[BaseModel], loc: Loc, data: Any) -> list[str]:
    model = model_at(root, loc, data)
    return list(model.model_fields) if model else []


def is_secret(root: type[BaseModel], loc: Loc, data: Any) -> bool:
    """A `Secret` field, whatever its name (or one named like one, to be safe)."""
    if not loc or not isinstance(loc[-1], str):
        return False
    model = model_at(root, loc[:-1], data)
    info = model.model_fields.get(loc[-1]) if model else None
    typed = info is not None and any(getattr(m, "func", None) is secret_value for m in info.metadata)
    return typed or loc[-1] in _SECRET_FIELDS or loc[-1].endswith(_SECRET_SUFFIXES)


def _child(node: Any, part: str | int) -> Any:
    if isinstance(node, dict):
        return node.get(part)
    if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
        return node[part]
    return None


def _pick(tp: Any, node: Any) -> Any:
    """An optional or union type narrowed to the member the data is about."""
    while get_origin(tp) is Annotated:
        tp = get_args(tp)[0]
    if get_origin(tp) not in (Union, types.UnionType):
        return tp
    members = [_pick(m, node) for m in get_args(tp) if m is not type(None)]
    models = [m for m in members if isinstance(m, type) and issubclass(m, BaseModel)]
    kind = node.get("kind") if isinstance(node, dict) else None
    for m in models:
        if "kind" in m.model_fields and kind in get_args(m.model_fields["kind"].annotation):
            return m
    return models[0] if len(models) == 1 else (members[0] if len(members) == 1 else None)
