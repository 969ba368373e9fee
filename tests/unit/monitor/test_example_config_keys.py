"""The README says `vigil.example.yaml` shows every key; it missed some (`schedule.misfire_grace`,
`grafana.org_id`, ...). This walks the pydantic models of the configuration and fails on a key
of any of them the example does not show, or a key the example has that its model does not.

A key is shown when the example sets it wherever its model is used (the top-level `policy:` shows
a model's own `policy:` keys; a receiver of kind opsgenie shows the opsgenie keys), or, for
alternatives one file cannot set at once (`token_file` beside `token_env`, a second serving
kind), when the example names it in a comment as `# key:` or `or key:`."""
from __future__ import annotations

import re
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel

from monitor.config import VigilConfig

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "vigil.example.yaml"
INTERNAL = {"base_dir"}  # set by load_config, never written in a file
Path_ = tuple[str, ...]


def _members(tp: Any) -> list[Any]:
    """The types a field may hold: Optional, unions and Annotated unwrapped."""
    origin = get_origin(tp)
    if origin is Annotated:
        return _members(get_args(tp)[0])
    if origin in (Union, types.UnionType):
        return [m for a in get_args(tp) for m in _members(a)]
    return [tp]


def _models_in(tp: Any, path: Path_) -> Iterator[tuple[type[BaseModel], Path_]]:
    """Each config model a field of this type holds, with where its keys are in the file
    (`[]` for any list item, `{}` for any mapping value)."""
    for m in _members(tp):
        origin = get_origin(m)
        if isinstance(m, type) and issubclass(m, BaseModel):
            yield m, path
        elif origin in (list, tuple, set, frozenset):
            for a in get_args(m):
                if a is not Ellipsis:
                    yield from _models_in(a, (*path, "[]"))
        elif origin is dict:
            yield from _models_in(get_args(m)[1], (*path, "{}"))


def _uses(cls: type[BaseModel], path: Path_ = (), stack: tuple[type, ...] = ()) -> Iterator[tuple[type[BaseModel],
                                                                                                  Path_]]:
    yield cls, path
    for name, field in cls.model_fields.items():
        for sub, where in _models_in(field.annotation, (*path, field.alias or name)):
            if sub not in stack:
                yield from _uses(sub, where, (*stack, cls))


def _nodes(data: Any, path: Path_) -> list[Any]:
    if not path:
        return [data]
    head, rest = path[0], path[1:]
    if head == "[]":
        return [n for item in data for n in _nodes(item, rest)] if isinstance(data, list) else []
    if head == "{}":
        return [n for v in data.values() for n in _nodes(v, rest)] if isinstance(data, dict) else []
    return _nodes(data[head], rest) if isinstance(data, dict) and head in data else []


def _kind(cls: type[BaseModel]) -> str | None:
    """A union member's `kind` tag (receivers, serving layers): it says which items are its."""
    field = cls.model_fields.get("kind")
    args = get_args(field.annotation) if field is not None and get_origin(field.annotation) is Literal else ()
    return str(args[0]) if len(args) == 1 else None


def _keys(cls: type[BaseModel]) -> set[str]:
    return {f.alias or n for n, f in cls.model_fields.items()} - INTERNAL


def _check() -> tuple[list[str], list[str]]:
    text = EXAMPLE.read_text()
    data = yaml.safe_load(text)
    shown: dict[type[BaseModel], set[str]] = {}
    paths: dict[type[BaseModel], list[Path_]] = {}
    unknown: list[str] = []
    for cls, path in _uses(VigilConfig):
        kind = _kind(cls)
        nodes = [n for n in _nodes(data, path) if isinstance(n, dict) and (kind is None or n.get("kind") == kind)]
        shown.setdefault(cls, set()).update(k for n in nodes for k in n)
        paths.setdefault(cls, []).append(path)
        unknown += [f"{'.'.join((*path, str(k)))} ({cls.__name__} has no such key)"
                    for n in nodes for k in n if k not in _keys(cls)]
    commented = set(re.findall(r"(?:#[\s-]*|\bor\s+)([a-z_]+):", text))
    missing = sorted(f"{'.'.join(paths[cls][0]) or '(top level)'}: {key} ({cls.__name__})"
                     for cls, keys in shown.items() for key in _keys(cls) - keys - commented)
    return missing, sorted(set(unknown))


def test_the_example_config_shows_every_key_of_every_config_model() -> None:
    missing, _ = _check()
    assert not missing, "vigil.example.yaml does not show:\n  " + "\n  ".join(missing)


def test_the_example_config_has_no_key_its_model_does_not_know() -> None:
    _, unknown = _check()
    assert not unknown, "vigil.example.yaml has:\n  " + "\n  ".join(unknown)


def test_the_examples_canary_metric_overrides_follow_the_canarys_own_settings() -> None:
    """Copied, the example's per-metric canary overrides pinned alpha, the effects and min_points
    at the values the canary had then: a user tuning `canary.alpha` saw ctr keep 0.05. Shown as
    null (the canary's own), they follow it."""
    data = yaml.safe_load(EXAMPLE.read_text())
    inherited = ("alpha", "fail_effect", "marginal_effect", "min_points")
    pinned = [(model["name"], metric, key, value)
              for model in data["models"] for metric, over in ((model.get("canary") or {}).get("metrics") or {}).items()
              for key, value in over.items() if key in inherited and value is not None]
    assert pinned == [], f"the example pins these canary settings per metric: {pinned}"
