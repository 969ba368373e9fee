"""MLflow's SQL store in-process (`sqlite:///path`) through `MlflowClient`, for demos,
replay and tests. The file is checked first with the stdlib: MLflow retries opening a
bad database for about 100 s before it gives up."""
from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

from monitor.sources.errors import QueryError, SourceUnavailable
from monitor.sources.registry.versions import SOURCE, ModelNotFound, ModelVersionInfo, name_filter, version_info


class SqlStoreBackend:
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
        return version_info(mv.name, mv.version, mv.creation_timestamp, dict(mv.tags or {}), mv.source,
                             mv.run_id, mv.status)

    def aliases(self, name: str) -> dict[str, str]:
        rm = self._run("get_registered_model", lambda c: c.get_registered_model(name), name=name)
        return {a: str(v) for a, v in (rm.aliases or {}).items()}

    def all_aliases(self) -> dict[str, dict[str, str]]:
        """Every registered model's aliases, a page of 1,000 models per query."""
        out: dict[str, dict[str, str]] = {}
        token: str | None = None
        while True:
            page = self._run("search_registered_models", lambda c, page_token=token: c.search_registered_models(
                max_results=1000, page_token=page_token))
            for rm in page:
                out[rm.name] = {a: str(v) for a, v in (rm.aliases or {}).items()}
            token = page.token
            if not token:
                return out

    def search_versions(self, name: str) -> list[ModelVersionInfo]:
        flt = name_filter(name)
        out: list[ModelVersionInfo] = []
        token: str | None = None
        while True:
            page = self._run("search_model_versions", lambda c, page_token=token: c.search_model_versions(
                flt, max_results=1000, page_token=page_token), name=name)
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

    def delete_alias(self, name: str, alias: str) -> None:
        self._run("delete_registered_model_alias", lambda c: c.delete_registered_model_alias(name, alias), name=name)

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

