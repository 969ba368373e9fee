"""MLflow's REST API (`http(s)://`, an `mlflow server`) with httpx, retried with tenacity
inside a deadline of `timeout_s`. MLflow's own client retries 7 times with backoff
(against a refused port it had not given up after 200 s), which would stall a cycle."""
from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import httpx
from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
)

from alerts.receivers.http import whole_answer
from monitor.sources.errors import QueryError, SourceUnavailable
from monitor.sources.http import backoff_or_retry_after, bounded_retry_after
from monitor.sources.registry.versions import SOURCE, ModelNotFound, ModelVersionInfo, name_filter, version_info


class _Retryable(Exception):
    def __init__(self, response: httpx.Response, left_s: float) -> None:
        self.response = response
        self.retry_after = bounded_retry_after(response.headers.get("Retry-After"), time.time())
        # asked to wait past the call's deadline: retrying sooner only draws another refusal
        self.too_late = self.retry_after is not None and self.retry_after > left_s
        super().__init__(f"HTTP {response.status_code}")


def _mlflow_error(response: httpx.Response) -> tuple[str, str]:
    try:
        body = response.json()
        return str(body.get("error_code", "")), str(body.get("message", response.text[:200]))
    except ValueError:
        return "", response.text[:200]



class RestBackend:
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
            # whole_answer: httpx's timeout bounds each read, and a server (or a proxy) sending
            # a byte at a time would hold the cycle for minutes past the deadline.
            resp = whole_answer(self._http, method, url, params=params, json=body, timeout=remaining)
            if resp.status_code in self._RETRY_STATUS:
                raise _Retryable(resp, deadline - time.monotonic())
            return resp

        retrying = Retrying(
            stop=stop_after_attempt(self.attempts) | stop_before_delay(self.timeout_s),
            wait=backoff_or_retry_after(0.1, 1.0),
            retry=retry_if_exception(lambda e: isinstance(e, retry_on) and not getattr(e, "too_late", False)),
            reraise=True,
        )
        try:
            resp = retrying(attempt)
        except _Retryable as e:
            code, msg = _mlflow_error(e.response)
            reason = f"HTTP {e.response.status_code} {code} {msg}".strip()
            if e.retry_after is not None:
                reason += f" (Retry-After {e.retry_after:.0f} s)"
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
        return version_info(mv["name"], mv["version"], mv.get("creation_timestamp"), self._tags(mv.get("tags")),
                             mv.get("source", ""), mv.get("run_id"), mv.get("status", ""))

    def aliases(self, name: str) -> dict[str, str]:
        resp = self._call("GET", "registered-models/get", params={"name": name})
        body = self._json(resp, "registered-models/get", {"name": name})
        return {a["alias"]: str(a["version"]) for a in body["registered_model"].get("aliases", [])}

    def _pages(self, endpoint: str, params: dict[str, Any], what: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Each page of a paged search. A page token answered twice (a cache before MLflow that
        ignores the query string answers the first page forever) ends it as unavailable."""
        seen: set[str] = set()
        token: str | None = None
        while True:
            page = {**params, "page_token": token} if token else params
            body = self._json(self._call("GET", endpoint, params=page), endpoint, what)
            yield body
            token = body.get("next_page_token")
            if not token:
                return
            if token in seen:
                raise SourceUnavailable(SOURCE, self.url, f"{endpoint}: the same next_page_token came twice "
                                        "(a cache or proxy before MLflow ignoring the query string?)")
            seen.add(token)

    def all_aliases(self) -> dict[str, dict[str, str]]:
        """Every registered model's aliases, a page of 1,000 models per request."""
        out: dict[str, dict[str, str]] = {}
        for body in self._pages("registered-models/search", {"max_results": 1000}, {}):
            for rm in body.get("registered_models", []):
                out[rm["name"]] = {a["alias"]: str(a["version"]) for a in rm.get("aliases", [])}
        return out

    def search_versions(self, name: str) -> list[ModelVersionInfo]:
        out: list[ModelVersionInfo] = []
        params = {"filter": name_filter(name), "max_results": 1000}
        for body in self._pages("model-versions/search", params, {"name": name}):
            out.extend(self._info(mv) for mv in body.get("model_versions", []))
        return out

    def get_version(self, name: str, version: str) -> ModelVersionInfo:
        resp = self._call("GET", "model-versions/get", params={"name": name, "version": version})
        return self._info(self._json(resp, "model-versions/get", {"name": name, "version": version})["model_version"])

    def set_alias(self, name: str, alias: str, version: str) -> None:
        resp = self._call("POST", "registered-models/alias", body={"name": name, "alias": alias, "version": version})
        self._json(resp, "registered-models/alias", {"name": name, "version": version})

    def delete_alias(self, name: str, alias: str) -> None:
        resp = self._call("DELETE", "registered-models/alias", body={"name": name, "alias": alias})
        self._json(resp, "registered-models/alias", {"name": name, "alias": alias})

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

