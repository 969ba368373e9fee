"""The checks across sections (monitor/config_cross.py) when some field failed validation.

pydantic runs the root's checks only on a valid whole, so one bad field hid every
unknown time interval, unknown model and too short retention in the rest of the file,
and a user fixed the file one `check-config` run at a time. Here the broken fields are
left out (their defaults taken, a broken list item dropped) and the rest validated
again; a cross check that reads a broken field is not run (it would judge a default).
"""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from monitor.config_errors import Loc, clean_loc

ROUNDS = 3  # leaving a field out can break another (a canary naming an invalid KPI): a few rounds


def cross_despite(root: type[BaseModel], data: Any, error: ValidationError, base_dir: str) -> list[tuple[Loc, str]]:
    """The cross-section problems of `data` apart from the fields `error` names, located
    as in `data`; none when what is left does not validate within a few rounds."""
    broken: list[Loc] = []
    kept: dict[str, list[int]] = {}  # a top-level list -> the index in `data` of each item left
    for _ in range(ROUNDS):
        locs = [_target(err, data) for err in error.errors()]
        if () in locs:  # the whole file: nothing is left to check
            return []
        broken += locs  # (a list item's index is never compared: the checks read every item)
        data = _without(data, locs, kept)
        cross: list[tuple[Loc, str]] = []
        try:
            root.model_validate({**data, "base_dir": base_dir},
                                context={"base_dir": base_dir, "cross_problems": cross, "broken": broken})
        except ValidationError as again:
            error = again
            continue
        return [(_original(loc, kept), msg) for loc, msg in cross]
    return []


def _target(err: Any, data: Any) -> Loc:
    """What to leave out: the field, or for a missing one the mapping that lacks it."""
    loc = clean_loc(err["loc"], data)
    return loc[:-1] if err["type"] == "missing" else loc


def _without(data: Any, locs: list[Loc], kept: dict[str, list[int]]) -> Any:
    """A copy of `data` without `locs`; `kept` follows the top-level lists' items."""
    out = _copy(data)
    unique = {loc for loc in locs if not any(loc[:n] in locs for n in range(1, len(loc)))}
    # The last first: a list item dropped never moves one still to be dropped.
    for loc in sorted(unique, key=lambda lc: tuple((0, p) if isinstance(p, int) else (1, p) for p in lc),
                      reverse=True):
        parent = out
        for part in loc[:-1]:
            parent = parent.get(part) if isinstance(parent, dict) else \
                parent[part] if isinstance(parent, list) and isinstance(part, int) and part < len(parent) else None
        last = loc[-1]
        if isinstance(parent, dict):
            parent.pop(last, None)
        elif isinstance(parent, list) and isinstance(last, int) and 0 <= last < len(parent):
            if len(loc) == 2 and isinstance(loc[0], str):
                del kept.setdefault(loc[0], list(range(len(parent))))[last]
            del parent[last]
    return out


def _copy(node: Any) -> Any:
    """The mappings and lists copied, the values shared (an `EnvValue` cannot be deep-copied)."""
    if isinstance(node, dict):
        return {k: _copy(v) for k, v in node.items()}
    return [_copy(v) for v in node] if isinstance(node, list) else node


def _original(loc: Loc, kept: dict[str, list[int]]) -> Loc:
    """A location after items were dropped -> the same item's location in the file."""
    if len(loc) >= 2 and isinstance(loc[0], str) and isinstance(loc[1], int) and loc[0] in kept:
        index = kept[loc[0]]
        if loc[1] < len(index):
            return (loc[0], index[loc[1]], *loc[2:])
    return loc
