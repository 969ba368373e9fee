"""Read vigil.yaml keeping the line of every key and list item, so each error can say
where it is (`vigil.yaml:14: models[0].polcy: ...`).

PyYAML's safe loader builds the values; its composed node tree, walked once, gives the
lines. A key written twice in one mapping is an error: YAML keeps the last one silently,
and a second `policy:` further down a long file is easy to miss. So is a value that YAML
read as a comment: `owner_channel: #recsys` is null, not a Slack channel.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from monitor.config_errors import ConfigError, ConfigIssue, Loc

_MERGE_TAG = "tag:yaml.org,2002:merge"
_BOOL_TAG, _INT_TAG, _FLOAT_TAG = "tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader reading plain scalars as YAML 1.2 does (and Alertmanager,
    Prometheus and Kubernetes, whose time intervals and labels people copy from): only
    true/false are booleans (`country: NO`, `paging: off` stay strings; a bool field still
    takes yes/no/on/off), and 17:30 is a string, not the base-60 number 1050."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (_BOOL_TAG, _INT_TAG, _FLOAT_TAG)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_Loader.add_implicit_resolver(_BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
_Loader.add_implicit_resolver(_INT_TAG, re.compile(r"""^(?:[-+]?0b[0-1_]+
    |[-+]?0[0-7_]+
    |[-+]?(?:0|[1-9][0-9_]*)
    |[-+]?0x[0-9a-fA-F_]+)$""", re.X), list("-+0123456789"))
_Loader.add_implicit_resolver(_FLOAT_TAG, re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?
    |\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""", re.X), list("-+0123456789."))
_NULL_TAG = "tag:yaml.org,2002:null"
# After a key: nothing but `#word` (no space after the #), which reads as a value, not a note.
_COMMENT_AS_VALUE = re.compile(r"^:[ \t]+(#[^\s#]\S*)[ \t]*$")


@dataclass
class YamlDoc:
    data: Any
    lines: dict[Loc, int] = field(default_factory=dict)  # key or list item -> its line (1-based)
    problems: list[tuple[Loc, str]] = field(default_factory=list)  # found while reading: duplicate keys


def read_yaml(path: Path) -> YamlDoc:
    """The parsed file with its lines; `ConfigError` when it cannot be read or parsed."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ConfigError([("(file)", f"cannot read {path}: {e.strerror}")], str(path)) from None
    try:
        text = raw.decode("utf-8")  # YAML's encoding, whatever the locale says
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise ConfigError([ConfigIssue("", f"not UTF-8: byte 0x{raw[e.start]:02x} (save the file as UTF-8)", line)],
                          str(path)) from None
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        doc = YamlDoc(None)
        if node is not None:
            _walk(node, (), doc, text.splitlines())  # before construction, which flattens `<<:` merges in place
            doc.data = loader.construct_document(node)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (column {mark.column + 1})" if mark else ""
        issue = ConfigIssue("", f"invalid YAML: {getattr(e, 'problem', None) or e}{where}",
                            mark.line + 1 if mark else None)
        raise ConfigError([issue], str(path)) from None
    finally:
        loader.dispose()
    return doc


def _walk(node: Node, loc: Loc, doc: YamlDoc, text: list[str], depth: int = 0) -> None:
    if depth > 100:  # an anchor that contains itself: the validation reports the shape
        return
    if isinstance(node, MappingNode):
        for key, value in node.value:
            if not isinstance(key, ScalarNode) or key.tag == _MERGE_TAG:
                continue
            where = (*loc, key.value)
            if where in doc.lines:
                doc.problems.append((where, f"duplicate key: also on line {doc.lines[where]}, and YAML "
                                            f"keeps only the last one"))
                # YAML drops the first value whole: the keys inside it are no duplicates of the last's
                for inner in [k for k in doc.lines if len(k) > len(where) and k[:len(where)] == where]:
                    del doc.lines[inner]
            doc.lines[where] = key.start_mark.line + 1
            word = _comment_as_value(key, value, text)
            if word is not None:
                doc.problems.append((where, f"no value: YAML reads {word!r} as a comment; quote it "
                                            f"(\"{word}\") if it is the value"))
            _walk(value, where, doc, text, depth + 1)
    elif isinstance(node, SequenceNode):
        for i, item in enumerate(node.value):
            doc.lines[(*loc, i)] = item.start_mark.line + 1
            _walk(item, (*loc, i), doc, text, depth + 1)



def _comment_as_value(key: ScalarNode, value: Node, text: list[str]) -> str | None:
    """`#word` when the key's value is an empty null with only that comment after it."""
    if not (isinstance(value, ScalarNode) and value.tag == _NULL_TAG and value.value == ""):
        return None
    end = key.end_mark
    line = text[end.line] if end.line < len(text) else ""
    m = _COMMENT_AS_VALUE.match(line[end.column:])
    return m.group(1) if m else None
