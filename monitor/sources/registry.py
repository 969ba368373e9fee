"""MLflow model registry: versions, aliases and the deploy events made from them.

MLflow keeps no alias history (moving an alias changes no timestamp), so deploys are
found by polling `alias_version` and diffing against the last state Vigil stored:
`detect_alias_move` is that diff, pure. When Vigil itself moves an alias (rollback,
replay) `move_alias` also writes version tags so the registry carries a record:

    vigil.alias.<alias>.set_at    RFC 3339 UTC time of the move
    vigil.alias.<alias>.previous  the version that held the alias before ("" if none)
    vigil.alias.<alias>.set_by    who moved it ("vigil-rollback", "vigil-replay", ...)

and `alias_record(info, alias)` reads them back. A replayed version's historical
creation time is the tag `vigil.created_at`; `ModelVersionInfo.created_at` prefers it
over MLflow's own `creation_timestamp`, which cannot be back-dated.

Two transports, one behaviour:
- `http(s)://` (an `mlflow server`): the REST API with httpx, retried with tenacity
  inside a deadline of `timeout_s`. MLflow's own client retries 7 times with backoff
  (against a refused port it had not given up after 200 s), which would stall a cycle.
- `sqlite:///path` : MLflow's store through `MlflowClient`, for demos, replay and tests.
  The file is checked first with the stdlib: MLflow retries opening a bad database
  for about 100 s before it gives up.

Versions are strings everywhere here (MLflow gives ints over SQLite, strings over HTTP).
"""
from __future__ import annotations

import logging
import math
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import httpx
from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_before_delay,
    wait_exponential,
)

from detectors.records import DeployEvent
from monitor.config import MlflowConfig
from monitor.sources.errors import QueryError, SourceState, SourceStatus, SourceUnavailable

log = logging.getLogger(__name__)

SOURCE = "mlflow"
CREATED_AT_TAG = "vigil.created_at"
REFERENCE_TAG = "vigil.reference_path"


def alias_tag(alias: str, field_name: str) -> str:
    """Version tag key for Vigil's record of an alias move: `vigil.alias.<alias>.<field>`."""
    return f"vigil.alias.{alias}.{field_name}"


# --------------------------------------------------------------------------- records
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


@dataclass(frozen=True)
class AliasRecord:
    """What Vigil wrote on a version when it moved an alias onto it."""

    alias: str
    version: str
    set_at: float
    previous_version: str | None
    set_by: str


def parse_timestamp(value: Any) -> float:
    """RFC 3339 text with a time zone ('2026-11-20T08:00:00Z') or epoch seconds -> epoch s."""
    if isinstance(value, bool):
        raise ValueError("expected an RFC 3339 time such as 2026-11-20T08:00:00Z or epoch seconds")
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise ValueError(f"expected finite epoch seconds, got {value!r}")
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            return float(text)
        except ValueError:
            pass
        try:
            dt = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(
                f"expected an RFC 3339 time such as 2026-11-20T08:00:00Z or epoch seconds, got {value!r}"
            ) from None
        if dt.tzinfo is None:
            raise ValueError(f"expected a time zone in {value!r} (e.g. a trailing Z for UTC)")
        return dt.timestamp()
    raise ValueError(f"expected an RFC 3339 time such as 2026-11-20T08:00:00Z or epoch seconds, got {value!r}")


def format_timestamp(at: float) -> str:
    """epoch s -> RFC 3339 UTC with a Z, fractions only as fine as needed (to the microsecond)."""
    dt = datetime.fromtimestamp(at, tz=UTC)
    spec = "seconds" if not dt.microsecond else "milliseconds" if dt.microsecond % 1000 == 0 else "microseconds"
    text = dt.isoformat(timespec=spec)
    return text.replace("+00:00", "Z")


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


def detect_alias_move(
    *, model: str, alias: str, last_known: str | None, current: str | None, at: float
) -> DeployEvent | None:
    """The diff of one poll: a DeployEvent if the alias now points elsewhere.

    `last_known` is what the store held (None on the very first poll: the caller decides
    whether a first sighting is a deploy); `current` None means the alias or the model
    is gone, which is not a deploy (the caller logs it).
    """
    if current is None:
        return None
    current = str(current)
    last = None if last_known is None else str(last_known)
    if current == last:
        return None
    return DeployEvent(model=model, alias=alias, version=current, previous_version=last, at=at, source="registry")


def _version_info(
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


# --------------------------------------------------------------------------- transports
class _Backend(Protocol):
    def aliases(self, name: str) -> dict[str, str]: ...
    def search_versions(self, name: str) -> list[ModelVersionInfo]: ...
    def get_version(self, name: str, version: str) -> ModelVersionInfo: ...
    def set_alias(self, name: str, alias: str, version: str) -> None: ...
    def set_version_tag(self, name: str, version: str, key: str, value: str) -> None: ...
    def create_model(self, name: str, tags: dict[str, str], description: str) -> bool: ...
    def create_version(
        self, name: str, source: str, run_id: str | None, tags: dict[str, str], description: str
    ) -> ModelVersionInfo: ...
    def ping(self) -> None: ...
    def close(self) -> None: ...


class _Retryable(Exception):
    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        super().__init__(f"HTTP {response.status_code}")


def _mlflow_error(response: httpx.Response) -> tuple[str, str]:
    try:
        body = response.json()
        return str(body.get("error_code", "")), str(body.get("message", response.text[:200]))
    except ValueError:
        return "", response.text[:200]


class _RestBackend:
    """MLflow's REST API (`/api/2.0/mlflow/`), every call bounded by one deadline."""

    _RETRY_STATUS = frozenset({429, 500, 502, 503, 504})

    def __init__(self, url: str, timeout_s: float, attempts: int = 3) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self.attempts = attempts
        headers = {"User-Agent": "vigil"}
        auth: httpx.BasicAuth | None = None
        # MLflow's own conventions for credentials, so a server behind auth works unchanged.
        if token := os.environ.get("MLFLOW_TRACKING_TOKEN"):
            headers["Authorization"] = f"Bearer {token}"
        elif (user := os.environ.get("MLFLOW_TRACKING_USERNAME")) is not None:
            auth = httpx.BasicAuth(user, os.environ.get("MLFLOW_TRACKING_PASSWORD", ""))
        self._http = httpx.Client(headers=headers, auth=auth, timeout=timeout_s)

    def _call(self, method: str, endpoint: str, *, params: dict[str, Any] | None = None,
              body: dict[str, Any] | None = None, idempotent: bool = True) -> httpx.Response:
        """One request, retried within `timeout_s`. A call that is not idempotent (creating a
        version) is retried only when the request cannot have reached the server."""
        url = f"{self.url}/api/2.0/mlflow/{endpoint}"
        retry_on = (httpx.TransportError, _Retryable) if idempotent else (httpx.ConnectError, httpx.ConnectTimeout)
        deadline = time.monotonic() + self.timeout_s

        def attempt() -> httpx.Response:
            # Each try gets only what is left of the budget, so the whole call stays bounded.
            remaining = max(deadline - time.monotonic(), 0.05)
            resp = self._http.request(method, url, params=params, json=body, timeout=remaining)
            if resp.status_code in self._RETRY_STATUS:
                raise _Retryable(resp)
            return resp

        retrying = Retrying(
            stop=stop_after_attempt(self.attempts) | stop_before_delay(self.timeout_s),
            wait=wait_exponential(multiplier=0.1, max=1.0),
            retry=retry_if_exception_type(retry_on),
            reraise=True,
        )
        try:
            resp = retrying(attempt)
        except _Retryable as e:
            code, msg = _mlflow_error(e.response)
            reason = f"HTTP {e.response.status_code} {code} {msg}".strip()
            raise SourceUnavailable(SOURCE, self.url, reason) from None
        except httpx.TimeoutException as e:
            reason = f"no answer within {self.timeout_s:g}s ({type(e).__name__})"
            raise SourceUnavailable(SOURCE, self.url, reason) from None
        except httpx.TransportError as e:
            raise SourceUnavailable(SOURCE, self.url, f"{type(e).__name__}: {e}") from None
        except RetryError as e:  # stop hit before any exception was re-raised
            raise SourceUnavailable(SOURCE, self.url, f"gave up: {e}") from None
        if resp.status_code in (401, 403):
            raise SourceUnavailable(SOURCE, self.url, f"HTTP {resp.status_code}: check MLFLOW_TRACKING_TOKEN or "
                                    "MLFLOW_TRACKING_USERNAME/PASSWORD")
        return resp

    def _json(self, resp: httpx.Response, endpoint: str, what: dict[str, Any]) -> dict[str, Any]:
        if resp.status_code == 200:
            try:
                return resp.json()
            except ValueError:
                reason = f"{endpoint}: answer is not JSON: {resp.text[:200]!r}"
                raise SourceUnavailable(SOURCE, self.url, reason) from None
        code, msg = _mlflow_error(resp)
        if code == "RESOURCE_DOES_NOT_EXIST":
            raise ModelNotFound(str(what.get("name", "")), what.get("version"))
        if not code and resp.status_code in (404, 405):
            # not MLflow's error shape: the URL points at something else (or a proxy's error page)
            reason = f"HTTP {resp.status_code} on {endpoint} without an MLflow error: is this an MLflow server?"
            raise SourceUnavailable(SOURCE, self.url, reason)
        raise QueryError(SOURCE, f"{endpoint} {what}", f"HTTP {resp.status_code} {code}: {msg}")

    @staticmethod
    def _tags(raw: list[dict[str, str]] | None) -> dict[str, str]:
        return {t["key"]: t.get("value", "") for t in raw or []}

    def _info(self, mv: dict[str, Any]) -> ModelVersionInfo:
        return _version_info(mv["name"], mv["version"], mv.get("creation_timestamp"), self._tags(mv.get("tags")),
                             mv.get("source", ""), mv.get("run_id"), mv.get("status", ""))

    def aliases(self, name: str) -> dict[str, str]:
        resp = self._call("GET", "registered-models/get", params={"name": name})
        body = self._json(resp, "registered-models/get", {"name": name})
        return {a["alias"]: str(a["version"]) for a in body["registered_model"].get("aliases", [])}

    def search_versions(self, name: str) -> list[ModelVersionInfo]:
        out: list[ModelVersionInfo] = []
        token: str | None = None
        while True:
            params: dict[str, Any] = {"filter": _name_filter(name), "max_results": 1000}
            if token:
                params["page_token"] = token
            resp = self._call("GET", "model-versions/search", params=params)
            body = self._json(resp, "model-versions/search", {"name": name})
            out.extend(self._info(mv) for mv in body.get("model_versions", []))
            token = body.get("next_page_token")
            if not token:
                return out

    def get_version(self, name: str, version: str) -> ModelVersionInfo:
        resp = self._call("GET", "model-versions/get", params={"name": name, "version": version})
        return self._info(self._json(resp, "model-versions/get", {"name": name, "version": version})["model_version"])

    def set_alias(self, name: str, alias: str, version: str) -> None:
        resp = self._call("POST", "registered-models/alias", body={"name": name, "alias": alias, "version": version})
        self._json(resp, "registered-models/alias", {"name": name, "version": version})

    def set_version_tag(self, name: str, version: str, key: str, value: str) -> None:
        body = {"name": name, "version": version, "key": key, "value": value}
        self._json(self._call("POST", "model-versions/set-tag", body=body), "model-versions/set-tag",
                   {"name": name, "version": version})

    def create_model(self, name: str, tags: dict[str, str], description: str) -> bool:
        body = {"name": name, "tags": [{"key": k, "value": v} for k, v in tags.items()], "description": description}
        resp = self._call("POST", "registered-models/create", body=body)
        if resp.status_code != 200 and _mlflow_error(resp)[0] == "RESOURCE_ALREADY_EXISTS":
            return False
        self._json(resp, "registered-models/create", {"name": name})
        return True

    def create_version(
        self, name: str, source: str, run_id: str | None, tags: dict[str, str], description: str
    ) -> ModelVersionInfo:
        body: dict[str, Any] = {"name": name, "source": source, "description": description,
                                "tags": [{"key": k, "value": v} for k, v in tags.items()]}
        if run_id:
            body["run_id"] = run_id
        resp = self._call("POST", "model-versions/create", body=body, idempotent=False)
        return self._info(self._json(resp, "model-versions/create", {"name": name})["model_version"])

    def ping(self) -> None:
        resp = self._call("GET", "registered-models/search", params={"max_results": 1})
        self._json(resp, "registered-models/search", {})

    def close(self) -> None:
        self._http.close()


def _name_filter(name: str) -> str:
    if "'" in name:
        # MLflow's filter grammar has no escape for a quote inside a string literal.
        raise ValueError(f"registered model name {name!r}: a single quote cannot be searched in MLflow")
    return f"name='{name}'"


class _StoreBackend:
    """MLflow's SQL store in-process (sqlite:/// URIs), through `MlflowClient`."""

    def __init__(self, uri: str, timeout_s: float) -> None:
        self.uri = uri
        self.timeout_s = timeout_s
        self._client: Any = None
        self._lock = threading.Lock()  # the scheduler may poll from several threads

    def _check_file(self) -> None:
        path = self.uri.removeprefix("sqlite:///")
        if not path or path == ":memory:":
            return
        p = Path(path)
        if not p.exists():
            # MLflow creates the file (and its folders) and the schema: a fresh registry.
            return
        try:
            con = sqlite3.connect(f"file:{p}?mode=ro", uri=True, timeout=self.timeout_s)
            try:
                con.execute("SELECT count(*) FROM sqlite_master").fetchone()
            finally:
                con.close()
        except sqlite3.Error as e:
            raise SourceUnavailable(SOURCE, self.uri, f"cannot read {p}: {e}") from None

    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                self._check_file()
                from mlflow import MlflowClient  # ~1.5 s import, only paid by the SQLite transport

                self._client = MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)
            return self._client

    def _translate(self, e: Exception, what: str, name: str, version: str | None) -> Exception:
        from mlflow.exceptions import MlflowException

        if isinstance(e, MlflowException):
            if e.error_code == "RESOURCE_DOES_NOT_EXIST":
                return ModelNotFound(name, version)
            if e.error_code in ("INVALID_PARAMETER_VALUE", "RESOURCE_ALREADY_EXISTS", "BAD_REQUEST"):
                return QueryError(SOURCE, f"{what} {name} {version or ''}".strip(), e.message)
            return SourceUnavailable(SOURCE, self.uri, f"{e.error_code}: {e.message}")
        # sqlalchemy OperationalError (database locked, disk full) and the like
        return SourceUnavailable(SOURCE, self.uri, f"{type(e).__name__}: {e}")

    def _run(self, what: str, fn: Any, *, name: str = "", version: str | None = None) -> Any:
        client = self.client()
        try:
            return fn(client)
        except Exception as e:
            raise self._translate(e, what, name, version) from None

    @staticmethod
    def _info(mv: Any) -> ModelVersionInfo:
        return _version_info(mv.name, mv.version, mv.creation_timestamp, dict(mv.tags or {}), mv.source,
                             mv.run_id, mv.status)

    def aliases(self, name: str) -> dict[str, str]:
        rm = self._run("get_registered_model", lambda c: c.get_registered_model(name), name=name)
        return {a: str(v) for a, v in (rm.aliases or {}).items()}

    def search_versions(self, name: str) -> list[ModelVersionInfo]:
        flt = _name_filter(name)
        out: list[ModelVersionInfo] = []
        token: str | None = None
        while True:
            page = self._run("search_model_versions",
                             lambda c: c.search_model_versions(flt, max_results=1000, page_token=token), name=name)
            out.extend(self._info(mv) for mv in page)
            token = page.token
            if not token:
                return out

    def get_version(self, name: str, version: str) -> ModelVersionInfo:
        mv = self._run("get_model_version", lambda c: c.get_model_version(name, version), name=name, version=version)
        return self._info(mv)

    def set_alias(self, name: str, alias: str, version: str) -> None:
        self._run("set_registered_model_alias", lambda c: c.set_registered_model_alias(name, alias, version),
                  name=name, version=version)

    def set_version_tag(self, name: str, version: str, key: str, value: str) -> None:
        self._run("set_model_version_tag", lambda c: c.set_model_version_tag(name, version, key, value),
                  name=name, version=version)

    def create_model(self, name: str, tags: dict[str, str], description: str) -> bool:
        client = self.client()
        try:
            client.create_registered_model(name, tags=tags or None, description=description or None)
        except Exception as e:
            if getattr(e, "error_code", None) == "RESOURCE_ALREADY_EXISTS":
                return False
            raise self._translate(e, "create_registered_model", name, None) from None
        return True

    def create_version(
        self, name: str, source: str, run_id: str | None, tags: dict[str, str], description: str
    ) -> ModelVersionInfo:
        mv = self._run("create_model_version", lambda c: c.create_model_version(
            name, source, run_id=run_id, tags=tags or None, description=description or None), name=name)
        return self._info(mv)

    def ping(self) -> None:
        self._run("search_registered_models", lambda c: c.search_registered_models(max_results=1))

    def close(self) -> None:
        self._client = None


# --------------------------------------------------------------------------- the source
class RegistrySource:
    """The model registry as Vigil sees it. Every call raises `SourceUnavailable` when
    MLflow cannot be reached within about `cfg.timeout_s`, `ModelNotFound` for an
    unknown model or version, `QueryError` when MLflow rejects a request."""

    def __init__(self, cfg: MlflowConfig) -> None:
        self.cfg = cfg
        self.url = cfg.tracking_uri
        scheme = cfg.tracking_uri.split(":", 1)[0].lower()
        if scheme in ("http", "https"):
            self._backend: _Backend = _RestBackend(cfg.tracking_uri, cfg.timeout_s)
        elif scheme == "sqlite":
            self._backend = _StoreBackend(cfg.tracking_uri, cfg.timeout_s)
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

    def list_versions(self, name: str) -> list[ModelVersionInfo]:
        """All versions, sorted by version number; ModelNotFound if the model does not exist
        (a typo in `registry_name` must be loud, not an empty registry)."""
        versions = self._backend.search_versions(name)
        if not versions:
            self._backend.aliases(name)  # raises ModelNotFound for an unknown model
        return sorted(versions, key=lambda v: int(v.version))

    def get_version(self, name: str, version: str) -> ModelVersionInfo:
        return self._backend.get_version(name, _version_str(version))

    def reference_path(self, name: str, version: str, tag: str = REFERENCE_TAG) -> str | None:
        """The training-reference path recorded on the version, if any."""
        return self.get_version(name, version).tags.get(tag) or None

    # writes
    def set_alias(self, name: str, alias: str, version: str) -> None:
        """Point `alias` at `version` (a no-op when it already does)."""
        self._backend.set_alias(name, alias, _version_str(version))

    def set_version_tag(self, name: str, version: str, key: str, value: str) -> None:
        self._backend.set_version_tag(name, _version_str(version), key, value)

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
        version = _version_str(version)
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


def _version_str(version: Any) -> str:
    text = str(version).strip()
    if not text.isdigit():
        raise ValueError(f"model version: expected a string of digits, got {version!r}")
    return str(int(text))
