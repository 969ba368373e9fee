"""Vigil's record of an alias move, written as version tags (MLflow keeps no alias history):

    vigil.alias.<alias>.set_at    RFC 3339 UTC time of the move
    vigil.alias.<alias>.previous  the version that held the alias before ("" if none)
    vigil.alias.<alias>.set_by    who moved it ("vigil-rollback", "vigil-replay", ...)

`RegistrySource.move_alias` writes them and `alias_record(info, alias)` reads them back.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from monitor.sources.registry.timestamps import parse_timestamp
from monitor.sources.registry.versions import ModelVersionInfo

log = logging.getLogger("monitor.sources.registry")  # one logger name for the whole registry client


def alias_tag(alias: str, field_name: str) -> str:
    """Version tag key for Vigil's record of an alias move: `vigil.alias.<alias>.<field>`."""
    return f"vigil.alias.{alias}.{field_name}"



@dataclass(frozen=True)
class AliasRecord:
    """What Vigil wrote on a version when it moved an alias onto it."""

    alias: str
    version: str
    set_at: float
    previous_version: str | None
    set_by: str



def alias_record(info: ModelVersionInfo, alias: str) -> AliasRecord | None:
    """Vigil's record of the last time it moved `alias` onto this version, if any."""
    raw = info.tags.get(alias_tag(alias, "set_at"))
    if raw is None:
        return None
    try:
        set_at = parse_timestamp(raw)
    except ValueError:
        log.warning("unreadable alias tag", extra={"model": info.name, "version": info.version, "value": raw})
        return None
    return AliasRecord(
        alias=alias,
        version=info.version,
        set_at=set_at,
        previous_version=info.tags.get(alias_tag(alias, "previous")) or None,
        set_by=info.tags.get(alias_tag(alias, "set_by"), ""),
    )

