"""From parsed YAML to a validated configuration, every problem reported at once:

1. `${VAR}` references resolved (monitor/config_env.py);
2. each model's `policy:` merged, key by key and nested mappings too, over the global
   `policy:` (the raw mappings, so a validation error still names the key as written);
3. pydantic validation, its errors turned into `path: what was expected` with the line in
   the file (monitor/config_errors.py); when a field fails, the checks across sections
   are still run on the rest (monitor/config_cross_partial.py).

Kept apart from monitor/config.py, which holds the fields: this module takes the root
model as an argument and so never imports it.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from monitor.config_cross_partial import cross_despite
from monitor.config_env import EnvResolution, resolve_tree
from monitor.config_errors import ConfigError, ConfigIssue, Loc, clean_loc, describe, format_path, line_of

M = TypeVar("M", bound=BaseModel)
POLICY, MODELS = "policy", "models"


@dataclass(frozen=True)
class ConfigSource:
    """Where the data came from: named in every error, and what relative paths resolve against."""

    name: str = "config"
    base_dir: str = "."
    lines: dict[Loc, int] = field(default_factory=dict)
    problems: list[tuple[Loc, str]] = field(default_factory=list)  # found while reading the file


def validate_config(root: type[M], data: Any, src: ConfigSource, environ: Mapping[str, str] | None = None) -> M:
    if not isinstance(data, dict):
        raise ConfigError([("(top level)", f"expected a mapping with at least `{MODELS}:`")], src.name)
    env = resolve_tree(data, environ)
    merged = merge_policies(env.data)
    problems = [*src.problems, *env.errors]
    result: M | None = None
    cross: list[tuple[Loc, str]] = []  # checks across sections, collected by the root's validator (all at once)
    try:
        # The context: what a field that names a file (root_cause.call_graph) resolves against.
        result = root.model_validate({**merged, "base_dir": src.base_dir},
                                     context={"base_dir": src.base_dir, "cross_problems": cross})
    except ValidationError as e:
        problems += _validation_problems(e, root, merged, env)
        cross += cross_despite(root, merged, e, src.base_dir)
    problems += _without_inherited(cross)  # a global policy's problem, not again at each model inheriting it
    if problems or result is None:
        issues = [ConfigIssue(format_path(loc, merged), msg, line_of(loc, src.lines)) for loc, msg in problems]
        issues.sort(key=lambda i: i.line or 0)  # in the order of the file
        raise ConfigError(issues, src.name)
    return result


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """`over` on top of `base`; mappings merge key by key, anything else replaces."""
    out = dict(base)
    for key, value in over.items():
        below = out.get(key)
        out[key] = deep_merge(below, value) if isinstance(value, dict) and isinstance(below, dict) else value
    return out


def merge_policies(data: dict[str, Any]) -> dict[str, Any]:
    """Each model's `policy:` as the global one with the model's keys on top."""
    base, models = data.get(POLICY, {}), data.get(MODELS)
    if not isinstance(base, dict) or not isinstance(models, list):
        return data  # the validation says what is wrong with them
    return {**data, MODELS: [{**m, POLICY: deep_merge(base, m[POLICY])}
                             if isinstance(m, dict) and isinstance(m.get(POLICY), dict) else m for m in models]}


def _validation_problems(e: ValidationError, root: type[BaseModel], data: Any,
                         env: EnvResolution) -> list[tuple[Loc, str]]:
    out: list[tuple[Loc, str]] = []
    for err in e.errors():
        loc = clean_loc(err["loc"], data)
        if any(loc[:len(bad)] == bad for bad, _ in env.errors):
            continue  # reported as the reference that did not resolve
        if err["type"] == "missing" and loc in env.left_out:
            msg = (f"required field is missing: ${{{env.left_out[loc]}:-}} left it out, "
                   f"and {env.left_out[loc]} is not set")
        else:
            msg = describe(err, loc, root, data)
        out.append((loc, msg))
    return _without_inherited(_one_per_path(out))


def _one_per_path(problems: list[tuple[Loc, str]]) -> list[tuple[Loc, str]]:
    """A value no member of a union takes gets an error per member, at one path: one line,
    `A or B (got x)`, with the value said once."""
    by_loc: dict[Loc, list[str]] = {}
    for loc, msg in problems:
        by_loc.setdefault(loc, []).append(msg)
    out: list[tuple[Loc, str]] = []
    for loc, msgs in by_loc.items():
        got = re.search(r" \(got .*\)$", msgs[0]) if len(msgs) > 1 else None
        if got is not None and all(m.endswith(got.group(0)) for m in msgs):
            msgs = [" or ".join(m.removesuffix(got.group(0)) for m in msgs) + got.group(0)]
        out.extend((loc, m) for m in msgs)
    return out


def _without_inherited(problems: list[tuple[Loc, str]]) -> list[tuple[Loc, str]]:
    """A model's merged policy repeats every error of the global one; those are reported
    once, at `policy.…`, where they can be fixed."""
    in_global = {(loc[1:], msg) for loc, msg in problems if loc[:1] == (POLICY,)}

    def inherited(loc: Loc, msg: str) -> bool:
        return len(loc) >= 3 and loc[0] == MODELS and loc[2] == POLICY and (loc[3:], msg) in in_global

    return [(loc, msg) for loc, msg in problems if not inherited(loc, msg)]
