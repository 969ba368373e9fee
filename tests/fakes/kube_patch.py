"""JSON merge patch (RFC 7386), JSON patch (RFC 6902) and label selectors, as the local
Kubernetes API (kube_api.py) applies them."""
from __future__ import annotations

import copy
import re
from typing import Any


# --------------------------------------------------------------------------- patches
def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise ValueError(f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _parent(doc: Any, parts: list[str]) -> tuple[Any, str]:
    node = doc
    for p in parts[:-1]:
        node = node[int(p)] if isinstance(node, list) else node[p]
    return node, parts[-1]


def _get(doc: Any, path: str) -> Any:
    node = doc
    for p in _pointer(path):
        node = node[int(p)] if isinstance(node, list) else node[p]
    return node


def _add(doc: Any, path: str, value: Any, replace: bool) -> Any:
    parts = _pointer(path)
    if not parts:
        return copy.deepcopy(value)
    node, last = _parent(doc, parts)
    if isinstance(node, list):
        i = len(node) if last == "-" else int(last)
        if replace:
            node[i] = copy.deepcopy(value)
        else:
            node.insert(i, copy.deepcopy(value))
    else:
        if replace and last not in node:
            raise KeyError(path)
        node[last] = copy.deepcopy(value)
    return doc


def _remove(doc: Any, path: str) -> Any:
    node, last = _parent(doc, _pointer(path))
    if isinstance(node, list):
        node.pop(int(last))
    else:
        del node[last]
    return doc


def json_patch(doc: Any, ops: list[dict[str, Any]]) -> Any:
    """RFC 6902; raises ValueError on a failed test or a path that does not exist."""
    doc = copy.deepcopy(doc)
    try:
        for op in ops:
            kind, path = op["op"], op["path"]
            if kind == "test":
                if _get(doc, path) != op["value"]:
                    raise ValueError(f"test operation failed at {path}")
            elif kind in ("add", "replace"):
                doc = _add(doc, path, op["value"], replace=kind == "replace")
            elif kind == "remove":
                doc = _remove(doc, path)
            elif kind in ("move", "copy"):
                value = copy.deepcopy(_get(doc, op["from"]))
                if kind == "move":
                    doc = _remove(doc, op["from"])
                doc = _add(doc, path, value, replace=False)
            else:
                raise ValueError(f"unknown op {kind!r}")
    except (KeyError, IndexError, TypeError) as e:
        raise ValueError(f"path not found: {e}") from None
    return doc


# --------------------------------------------------------------------------- selectors
def _split_selector(selector: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in selector:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    return [p for p in [*parts, cur.strip()] if p]


def matches(labels: dict[str, str], selector: str) -> bool:
    for req in _split_selector(selector):
        if m := re.fullmatch(r"(\S+)\s+(in|notin)\s+\((.*)\)", req):
            values = {v.strip() for v in m.group(3).split(",")}
            inside = labels.get(m.group(1)) in values
            if inside != (m.group(2) == "in"):
                return False
        elif "!=" in req:
            k, v = req.split("!=", 1)
            if labels.get(k.strip()) == v.strip():
                return False
        elif "=" in req:
            k, v = req.replace("==", "=").split("=", 1)
            if labels.get(k.strip()) != v.strip():
                return False
        elif req.startswith("!"):
            if req[1:] in labels:
                return False
        elif req not in labels:
            return False
    return True
