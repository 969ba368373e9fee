"""A scenario's registry history (`registry.jsonl`) and its replay into a real MLflow registry.

One JSON object per line, `at` in RFC 3339 (with a zone) or epoch seconds:

    {"type":"model","name":"recommender","at":"2026-11-20T07:00:00Z","tags":{"team":"recsys"}}
    {"type":"version","name":"recommender","version":"1","at":"2026-11-20T08:00:00Z",
     "tags":{"git_sha":"abc1234","vigil.reference_path":"reference/train.parquet"}}
    {"type":"alias","name":"recommender","alias":"champion","version":"1","at":1795161600}

Replay does not turn this file into deploy events itself: `RegistryTimeline.apply_until(t)`
writes the history up to `t` into the registry, and the daemon's ordinary poll-and-diff
finds the alias moves, so the replay exercises the production path.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from monitor.sources.registry import (
    CREATED_AT_TAG,
    ModelNotFound,
    RegistrySource,
    format_timestamp,
    parse_timestamp,
)

EventType = Literal["model", "version", "alias"]
_FIELDS: dict[str, set[str]] = {
    "model": {"type", "name", "at", "tags", "description"},
    "version": {"type", "name", "at", "version", "tags", "description", "source"},
    "alias": {"type", "name", "at", "version", "alias"},
}
REPLAY_SET_BY = "vigil-replay"


@dataclass(frozen=True)
class RegistryEvent:
    type: EventType
    name: str
    at: float  # epoch s
    version: str | None = None
    alias: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    description: str = ""
    source: str | None = None  # model version source; default `vigil-replay:/<name>/<version>`
    line: int = field(default=0, compare=False)  # where it came from, for error messages


def replay_source(name: str, version: str) -> str:
    """A source URI both transports accept (an `mlflow server` rejects local paths that
    are not inside a run's artifact folder) and that says where the version came from."""
    return f"vigil-replay:/{name}/{version}"


def _where(label: str, line: int) -> str:
    return f"{label} line {line}" if line else label


def _parse_line(obj: Any, line: int, label: str) -> RegistryEvent:
    here = _where(label, line)
    if not isinstance(obj, dict):
        raise ValueError(f"{here}: expected a JSON object, got {type(obj).__name__}")
    kind = obj.get("type")
    if kind not in _FIELDS:
        raise ValueError(f"{here}: field 'type' expected one of 'model', 'version', 'alias', got {kind!r}")
    unknown = sorted(set(obj) - _FIELDS[kind])
    if unknown:
        raise ValueError(f"{here}: unknown field {unknown[0]!r} for a {kind!r} event "
                         f"(expected {', '.join(sorted(_FIELDS[kind]))})")
    name = obj.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"{here}: field 'name' expected a non-empty string, got {name!r}")
    if "at" not in obj:
        raise ValueError(f"{here}: field 'at' is required (an RFC 3339 time such as 2026-11-20T08:00:00Z "
                         "or epoch seconds)")
    try:
        at = parse_timestamp(obj["at"])
    except ValueError as e:
        raise ValueError(f"{here}: field 'at' {e}") from None

    version: str | None = None
    if kind in ("version", "alias"):
        raw = obj.get("version")
        if isinstance(raw, int) and not isinstance(raw, bool) and raw > 0:
            raw = str(raw)
        if not isinstance(raw, str) or not raw.isdigit() or int(raw) < 1:
            raise ValueError(f"{here}: field 'version' expected a string of digits (1, 2, ...), got {raw!r}")
        version = str(int(raw))
    alias: str | None = None
    if kind == "alias":
        alias = obj.get("alias")
        if not isinstance(alias, str) or not alias.strip():
            raise ValueError(f"{here}: field 'alias' expected a non-empty string such as 'champion', got {alias!r}")
    tags = obj.get("tags", {})
    if not isinstance(tags, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in tags.items()):
        raise ValueError(f"{here}: field 'tags' expected an object of string values, got {tags!r}")
    description = obj.get("description", "")
    if not isinstance(description, str):
        raise ValueError(f"{here}: field 'description' expected a string, got {description!r}")
    source = obj.get("source")
    if source is not None and (not isinstance(source, str) or not source):
        raise ValueError(f"{here}: field 'source' expected a non-empty string (a model URI), got {source!r}")
    return RegistryEvent(type=kind, name=name, at=at, version=version, alias=alias, tags=dict(tags),
                         description=description, source=source, line=line)


def check_history(events: list[RegistryEvent], label: str = "registry.jsonl") -> None:
    """Cross-line rules, so a bad bundle fails on load and not halfway through a replay:
    per model, versions appear in time order as 1, 2, 3 ... (MLflow assigns the
    numbers), and an alias only points at a version created at or before it."""
    created: dict[str, int] = {}
    for ev in sorted(events, key=lambda e: e.at):  # stable: file order breaks ties
        here = _where(label, ev.line)
        if ev.type == "version":
            expected = created.get(ev.name, 0) + 1
            if int(ev.version or 0) != expected:
                raise ValueError(
                    f"{here}: field 'version' expected {expected} for model {ev.name!r} "
                    f"(versions are numbered 1, 2, ... in time order by MLflow), got {ev.version}"
                )
            created[ev.name] = expected
        elif ev.type == "alias" and int(ev.version or 0) > created.get(ev.name, 0):
            raise ValueError(
                f"{here}: field 'version' {ev.version} of model {ev.name!r} is not created at or before "
                f"{format_timestamp(ev.at)} (alias {ev.alias!r})"
            )


def read_registry_jsonl(path: Path) -> list[RegistryEvent]:
    """Parse and check a registry history; ValueError names the line and the field."""
    path = Path(path)
    label = path.name
    events: list[RegistryEvent] = []
    with path.open(encoding="utf-8") as fh:
        for line_no, text in enumerate(fh, start=1):
            if not text.strip():
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as e:
                raise ValueError(f"{label} line {line_no}: invalid JSON: {e.msg} (column {e.colno})") from None
            events.append(_parse_line(obj, line_no, label))
    check_history(events, label)
    return events


class RegistryTimeline:
    """Writes a recorded registry history into a live registry as replay time advances."""

    def __init__(self, events: list[RegistryEvent], registry: RegistrySource) -> None:
        self.events = sorted(events, key=lambda e: e.at)  # stable: file order breaks ties
        self.registry = registry
        self._next = 0

    @property
    def pending(self) -> list[RegistryEvent]:
        return self.events[self._next:]

    def apply_until(self, t: float) -> list[RegistryEvent]:
        """Apply, in time order, every event with `at <= t` not applied yet; return them.

        Safe to run again over a registry it already filled (a restarted replay): a model
        that exists is left alone, a version that exists must carry the same
        `vigil.created_at`, an alias already in place is not rewritten.
        """
        applied: list[RegistryEvent] = []
        while self._next < len(self.events) and self.events[self._next].at <= t:
            ev = self.events[self._next]
            self._apply(ev)
            self._next += 1
            applied.append(ev)
        return applied

    def _apply(self, ev: RegistryEvent) -> None:
        if ev.type == "model":
            self.registry.create_model(ev.name, tags=ev.tags, description=ev.description)
        elif ev.type == "version":
            self._create_version(ev)
        else:
            assert ev.alias is not None and ev.version is not None
            self.registry.move_alias(ev.name, ev.alias, ev.version, at=ev.at, set_by=REPLAY_SET_BY, source="bundle")

    def _create_version(self, ev: RegistryEvent) -> None:
        assert ev.version is not None
        here = _where("registry.jsonl", ev.line)
        created_at = format_timestamp(ev.at)
        try:
            existing = self.registry.get_version(ev.name, ev.version)
        except ModelNotFound:
            existing = None
        if existing is not None:
            if existing.tags.get(CREATED_AT_TAG) != created_at:
                raise ValueError(
                    f"{here}: version {ev.version} of {ev.name!r} already exists in the registry and was not "
                    f"created by this history ({CREATED_AT_TAG}={existing.tags.get(CREATED_AT_TAG)!r}, "
                    f"expected {created_at!r}): replay into an empty registry"
                )
            return
        self.registry.create_model(ev.name)
        info = self.registry.create_version(
            ev.name,
            ev.source or replay_source(ev.name, ev.version),
            tags={**ev.tags, CREATED_AT_TAG: created_at},
            description=ev.description,
        )
        if info.version != ev.version:
            raise ValueError(
                f"{here}: MLflow numbered the new version of {ev.name!r} {info.version}, the history says "
                f"{ev.version}: the registry already held other versions; replay into an empty registry"
            )
