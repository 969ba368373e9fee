"""What the registry holds about a model version, and the errors for what it does not hold.

Versions are strings everywhere here (MLflow gives ints over SQLite, strings over HTTP).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from monitor.sources.registry.timestamps import parse_timestamp

log = logging.getLogger("monitor.sources.registry")  # one logger name for the whole registry client

SOURCE = "mlflow"
CREATED_AT_TAG = "vigil.created_at"  # a replayed version's historical creation time
REFERENCE_TAG = "vigil.reference_path"


class ModelNotFound(KeyError):
    """The registered model (or the version) does not exist: not the same as MLflow being down."""

    def __init__(self, name: str, version: str | None = None) -> None:
        self.name, self.version = name, version
        super().__init__(name)

    def __str__(self) -> str:
        if self.version is None:
            return f"registered model {self.name!r} not found in the MLflow registry"
        return f"version {self.version} of registered model {self.name!r} not found in the MLflow registry"


@dataclass(frozen=True)
class ModelVersionInfo:
    name: str
    version: str
    created_at: float  # epoch s: tag `vigil.created_at` if present, else MLflow's creation_timestamp
    tags: dict[str, str]
    source: str
    run_id: str | None
    status: str



def version_info(
    name: str, version: Any, creation_ms: Any, tags: dict[str, str], source: str, run_id: str | None, status: str
) -> ModelVersionInfo:
    created_at = float(creation_ms or 0) / 1000.0
    if CREATED_AT_TAG in tags:
        try:
            created_at = parse_timestamp(tags[CREATED_AT_TAG])
        except ValueError:
            log.warning("unreadable creation tag", extra={"model": name, "version": str(version)})
    return ModelVersionInfo(
        name=name,
        version=str(version),
        created_at=created_at,
        tags=dict(tags),
        source=source or "",
        run_id=run_id or None,
        status=str(status or ""),
    )



def version_str(version: Any) -> str:
    text = str(version).strip()
    if not text.isdigit():
        raise ValueError(f"model version: expected a string of digits, got {version!r}")
    return str(int(text))


def name_filter(name: str) -> str:
    if "'" in name:
        # MLflow's filter grammar has no escape for a quote inside a string literal.
        raise ValueError(f"registered model name {name!r}: a single quote cannot be searched in MLflow")
    return f"name='{name}'"

