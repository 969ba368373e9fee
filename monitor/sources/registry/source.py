"""`RegistrySource`: the model registry as Vigil sees it, over either transport."""
from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Collection
from typing import Protocol

from detectors.records import DeployEvent
from monitor.config import MlflowConfig
from monitor.sources.errors import QueryError, SourceState, SourceStatus, SourceUnavailable
from monitor.sources.registry.alias_tags import alias_tag
from monitor.sources.registry.rest import RestBackend
from monitor.sources.registry.sql_store import SqlStoreBackend
from monitor.sources.registry.timestamps import format_timestamp
from monitor.sources.registry.versions import (
    REFERENCE_TAG,
    SOURCE,
    ModelNotFound,
    ModelVersionInfo,
    version_str,
)

log = logging.getLogger("monitor.sources.registry")  # one logger name for the whole registry client
VERSION_CACHE_SIZE = 4096  # versions kept by id (reference paths); a few per model
# A version read without its reference tag is read again at most this often: the cycle's
# "no training reference" tells people to tag it, and the tag must then be seen.
UNTAGGED_REREAD_S = 60.0


class Backend(Protocol):
    """What a transport does; `RestBackend` and `SqlStoreBackend` implement it."""

    def aliases(self, name: str) -> dict[str, str]: ...
    def all_aliases(self) -> dict[str, dict[str, str]]: ...
    def search_versions(self, name: str) -> list[ModelVersionInfo]: ...
    def get_version(self, name: str, version: str) -> ModelVersionInfo: ...
    def set_alias(self, name: str, alias: str, version: str) -> None: ...
    def delete_alias(self, name: str, alias: str) -> None: ...
    def set_version_tag(self, name: str, version: str, key: str, value: str) -> None: ...
    def create_model(self, name: str, tags: dict[str, str], description: str) -> bool: ...
    def create_version(
        self, name: str, source: str, run_id: str | None, tags: dict[str, str], description: str
    ) -> ModelVersionInfo: ...
    def ping(self) -> None: ...
    def close(self) -> None: ...


class RegistrySource:
    """The model registry as Vigil sees it. Every call raises `SourceUnavailable` when
    MLflow cannot be reached within about `cfg.timeout_s`, `ModelNotFound` for an
    unknown model or version, `QueryError` when MLflow rejects a request."""

    def __init__(self, cfg: MlflowConfig) -> None:
        self.cfg = cfg
        self.url = cfg.tracking_uri
        self._versions: OrderedDict[tuple[str, str], ModelVersionInfo] = OrderedDict()
        self._versions_lock = threading.Lock()
        self._untagged: dict[tuple[str, str, str], float] = {}  # (name, version, tag) -> read at (monotonic)
        scheme = cfg.tracking_uri.split(":", 1)[0].lower()
        if scheme in ("http", "https"):
            self._backend: Backend = RestBackend(cfg.tracking_uri, cfg.timeout_s)
        elif scheme == "sqlite":
            self._backend = SqlStoreBackend(cfg.tracking_uri, cfg.timeout_s)
        else:
            raise ValueError(
                f"sources.mlflow.tracking_uri: expected http(s)://host:port (an MLflow server) or "
                f"sqlite:///path/mlflow.db, got {cfg.tracking_uri!r}"
            )

    # reads
    def alias_version(self, name: str, alias: str) -> str | None:
        """The version `alias` points at; None if the alias or the model does not exist."""
        try:
            return self._backend.aliases(name).get(alias)
        except ModelNotFound:
            return None

    def aliases(self, name: str) -> dict[str, str]:
        """All aliases of a model, alias -> version (raises ModelNotFound)."""
        return self._backend.aliases(name)

    def all_aliases(self, names: Collection[str]) -> dict[str, dict[str, str]]:
        """Aliases of the named models in one pass over the registry (a sweep's read):
        one request per 1,000 registered models instead of one per model. A name the
        registry does not hold maps to {} (its alias_version would be None)."""
        found = self._backend.all_aliases()
        return {n: found.get(n, {}) for n in names}

    def get_version_cached(self, name: str, version: str) -> ModelVersionInfo:
        """A version by id, kept (bounded): a version's reference tag is read every cycle."""
        key = (name, version_str(version))
        with self._versions_lock:
            hit = self._versions.get(key)
            if hit is not None:
                self._versions.move_to_end(key)
                return hit
        info = self.get_version(name, version)
        with self._versions_lock:
            self._versions[key] = info
            while len(self._versions) > VERSION_CACHE_SIZE:
                self._versions.popitem(last=False)
        return info

    def list_versions(self, name: str) -> list[ModelVersionInfo]:
        """All versions, sorted by version number; ModelNotFound if the model does not exist
        (a typo in `registry_name` must be loud, not an empty registry)."""
        versions = self._backend.search_versions(name)
        if not versions:
            self._backend.aliases(name)  # raises ModelNotFound for an unknown model
        return sorted(versions, key=lambda v: int(v.version))

    def get_version(self, name: str, version: str) -> ModelVersionInfo:
        return self._backend.get_version(name, version_str(version))

    def reference_path(self, name: str, version: str, tag: str = REFERENCE_TAG) -> str | None:
        """The training-reference path recorded on the version, if any (the version is
        read once and kept: a cycle asks this every time)."""
        path = self.get_version_cached(name, version).tags.get(tag) or None
        if path is not None:
            return path
        # Not tagged when read: kept, the daemon said so until a restart after people tagged it.
        key, now = (name, version_str(version), tag), time.monotonic()
        with self._versions_lock:
            read_at = self._untagged.setdefault(key, now)
            if now - read_at < UNTAGGED_REREAD_S:
                return None
            self._untagged[key] = now
            self._versions.pop(key[:2], None)
        path = self.get_version_cached(name, version).tags.get(tag) or None
        if path is not None:
            with self._versions_lock:
                self._untagged.pop(key, None)
        return path

    # writes
    def set_alias(self, name: str, alias: str, version: str) -> None:
        """Point `alias` at `version` (a no-op when it already does)."""
        self._backend.set_alias(name, alias, version_str(version))

    def delete_alias(self, name: str, alias: str) -> None:
        """Remove `alias` from the model (a canary pulled: the challenger alias goes)."""
        self._backend.delete_alias(name, alias)

    def set_version_tag(self, name: str, version: str, key: str, value: str) -> None:
        self._backend.set_version_tag(name, version_str(version), key, value)
        with self._versions_lock:
            self._versions.pop((name, version_str(version)), None)

    def move_alias(
        self, name: str, alias: str, version: str, *, at: float, set_by: str = "vigil", source: str = "rollback"
    ) -> DeployEvent | None:
        """Move `alias` to `version` and record the move on the version (tags, see module doc).

        Idempotent: if the alias already points at `version` nothing is written and None is
        returned; otherwise the DeployEvent for the move (previous_version = old holder).
        The tags are written before the alias moves, so a reader never sees the alias on a
        version without its record; a failure between the two leaves a stale record on a
        version that does not hold the alias, which `alias_record` callers must check.
        """
        version = version_str(version)
        previous = self.alias_version(name, alias)
        if previous == version:
            return None
        self.get_version(name, version)  # ModelNotFound before writing anything
        self.set_version_tag(name, version, alias_tag(alias, "set_at"), format_timestamp(at))
        self.set_version_tag(name, version, alias_tag(alias, "previous"), previous or "")
        self.set_version_tag(name, version, alias_tag(alias, "set_by"), set_by)
        self.set_alias(name, alias, version)
        log.info("alias moved", extra={"model": name, "alias": alias, "version": version,
                                        "previous_version": previous, "set_by": set_by})
        return DeployEvent(model=name, alias=alias, version=version, previous_version=previous, at=at, source=source)

    def create_model(self, name: str, *, tags: dict[str, str] | None = None, description: str = "") -> bool:
        """Register a model; False if it already existed (nothing changed)."""
        return self._backend.create_model(name, dict(tags or {}), description)

    def create_version(
        self, name: str, source: str, *, run_id: str | None = None, tags: dict[str, str] | None = None,
        description: str = "",
    ) -> ModelVersionInfo:
        """Register a new version; MLflow assigns the number.

        Over HTTP the server rejects a local-path `source` unless it lies inside the
        artifact folder of the run `run_id`; a URI with a scheme of its own
        (e.g. `vigil-replay:/recommender/3`) is accepted by both transports.
        """
        return self._backend.create_version(name, source, run_id, dict(tags or {}), description)

    # health
    def ready(self) -> SourceState:
        now = time.time()
        try:
            self._backend.ping()
        except SourceUnavailable as e:
            return SourceState(name=SOURCE, status=SourceStatus.DOWN, url=self.url, detail=e.reason, checked_at=now)
        except QueryError as e:
            return SourceState(name=SOURCE, status=SourceStatus.DOWN, url=self.url, detail=e.reason, checked_at=now)
        return SourceState(name=SOURCE, status=SourceStatus.UP, url=self.url, checked_at=now)

    def close(self) -> None:
        self._backend.close()

    def __enter__(self) -> RegistrySource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

