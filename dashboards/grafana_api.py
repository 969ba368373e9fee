"""A small Grafana HTTP API client (httpx + tenacity) for folders, dashboards and
annotations, with errors that say what to do.

Transient failures (connection errors, timeouts, 429, 5xx) raise
`GrafanaUnavailable` and are retried here `retries` times; the annotation notifier
sets retries=0 because the outbox already retries, with back-off, across restarts.
"""
from __future__ import annotations

import email.utils
import logging
import time
from typing import Any
from urllib.parse import quote

import httpx
from tenacity import RetryCallState, retry, retry_if_exception_type, stop_after_attempt

log = logging.getLogger(__name__)
# The version message of every save Vigil makes: how a later run tells its own saves from a person's.
SAVE_MESSAGE = "provisioned by vigil"


class GrafanaError(Exception):
    """Base class; `status` is the HTTP status (None when no response came back)."""

    def __init__(self, message: str, *, status: int | None = None, url: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.url = url


class GrafanaAuthError(GrafanaError):
    """401/403: the token is missing, wrong, or lacks the permission."""


class GrafanaConflict(GrafanaError):
    """412 on a dashboard save: `reason` is Grafana's status (version-mismatch, name-exists, plugin-dashboard)."""

    def __init__(self, message: str, *, reason: str, status: int | None = 412, url: str = "") -> None:
        super().__init__(message, status=status, url=url)
        self.reason = reason


class GrafanaUnavailable(GrafanaError):
    """Grafana did not answer usefully now (down, timeout, 429, 5xx); try again later."""

    def __init__(self, message: str, *, status: int | None = None, url: str = "",
                 retry_after: float | None = None) -> None:
        super().__init__(message, status=status, url=url)
        self.retry_after = retry_after


class GrafanaRequestError(GrafanaError):
    """Grafana refused the request as sent (400, 404, ...): retrying will not help."""


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After as seconds: either delta-seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _message(resp: httpx.Response) -> str:
    try:
        body = resp.json()
        if isinstance(body, dict) and body.get("message"):
            return str(body["message"])
    except ValueError:
        pass
    return resp.text.strip()[:300] or resp.reason_phrase


def _wait(state: RetryCallState) -> float:
    """Honour Retry-After when Grafana sent one (capped), otherwise back off 0.2 s, 0.4 s, 0.8 s..."""
    exc = state.outcome.exception() if state.outcome else None
    hinted = getattr(exc, "retry_after", None)
    if hinted is not None:
        return min(float(hinted), 30.0)
    return min(0.2 * 2 ** (state.attempt_number - 1), 5.0)


class GrafanaClient:
    def __init__(self, url: str, token: str | None = None, *, timeout_s: float = 10.0, retries: int = 2,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.url = url.rstrip("/")
        headers = {"Accept": "application/json", "User-Agent": "vigil"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._has_token = bool(token)
        self._retries = retries
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout_s, transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> GrafanaClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ transport
    def request(self, method: str, path: str, *, json: Any = None, params: Any = None,
                ok: tuple[int, ...] = (200,)) -> httpx.Response:
        """Send one request (retried on transient failures); statuses in `ok` are returned, others raise."""
        call = retry(
            retry=retry_if_exception_type(GrafanaUnavailable),
            stop=stop_after_attempt(self._retries + 1),
            wait=_wait,
            reraise=True,
        )(self._once)
        return call(method, path, json, params, ok)

    def _once(self, method: str, path: str, json: Any, params: Any, ok: tuple[int, ...]) -> httpx.Response:
        where = f"{method} {self.url}{path}"
        try:
            resp = self._http.request(method, path, json=json, params=params)
        except httpx.TimeoutException as e:
            raise GrafanaUnavailable(f"Grafana timed out: {where} ({type(e).__name__})", url=self.url) from e
        except httpx.TransportError as e:
            raise GrafanaUnavailable(f"Grafana is unreachable: {where} ({e})", url=self.url) from e
        if resp.status_code in ok:
            return resp
        msg = _message(resp)
        status = resp.status_code
        if status in (401, 403):
            hint = ("no token was given: set GRAFANA_TOKEN (or grafana.token in the config) to a service-account token"
                    if not self._has_token and status == 401 else
                    "check that the token is valid and its service account has the Editor role "
                    "(dashboards:write, folders:create, annotations:write)")
            raise GrafanaAuthError(f"Grafana refused {where} with {status} ({msg}): {hint}", status=status,
                                   url=self.url)
        if status == 429 or status >= 500:
            raise GrafanaUnavailable(f"Grafana answered {status} to {where}: {msg}", status=status, url=self.url,
                                     retry_after=parse_retry_after(resp.headers.get("Retry-After")))
        if status == 412:
            try:
                reason = str(resp.json().get("status", ""))
            except ValueError:
                reason = ""
            raise GrafanaConflict(f"Grafana answered 412 ({reason or 'precondition failed'}) to {where}: {msg}",
                                  reason=reason, url=self.url)
        raise GrafanaRequestError(f"Grafana answered {status} to {where}: {msg}", status=status, url=self.url)

    # ------------------------------------------------------------------ folders
    def create_folder(self, uid: str, title: str) -> bool:
        """True when created, False when Grafana refused it as existing: 409 (a folder with this
        uid, or in older Grafana this title), or 412, Grafana 12's answer for a uid it has (its
        folder store's AlreadyExists becomes version-mismatch; a create has no version to mismatch).
        The caller checks with `get_folder` which one it was."""
        resp = self.request("POST", "/api/folders", json={"uid": uid, "title": title}, ok=(200, 409, 412))
        return resp.status_code == 200

    def get_folder(self, uid: str) -> dict[str, Any] | None:
        resp = self.request("GET", f"/api/folders/{uid}", ok=(200, 404))
        return resp.json() if resp.status_code == 200 else None

    # ------------------------------------------------------------------ dashboards
    def get_dashboard(self, uid: str) -> dict[str, Any] | None:
        """{"dashboard": ..., "meta": ...} or None when there is none with this uid."""
        resp = self.request("GET", f"/api/dashboards/uid/{uid}", ok=(200, 404))
        return resp.json() if resp.status_code == 200 else None

    def save_dashboard(self, dashboard: dict[str, Any], folder_uid: str, *, message: str = SAVE_MESSAGE,
                       overwrite: bool = False) -> dict[str, Any]:
        """Create or update by uid. Keep `overwrite` False: with it, Grafana also replaces a
        dashboard of the same title in the folder (another uid, often a user's own)."""
        body = {"dashboard": dashboard, "folderUid": folder_uid, "message": message, "overwrite": overwrite}
        return self.request("POST", "/api/dashboards/db", json=body).json()

    def latest_version(self, uid: str) -> dict[str, Any] | None:
        """The newest entry of the dashboard's history (`version`, `createdBy`, `message`), or
        None when Grafana keeps or shows none. Grafana 11 answers a list, Grafana 12
        `{"versions": [...], "continueToken": ...}`."""
        try:
            resp = self._once("GET", f"/api/dashboards/uid/{uid}/versions", None, {"limit": 1}, (200, 404))
            body = resp.json() if resp.status_code == 200 else None
        except (GrafanaError, ValueError):
            return None  # only a diagnostic (asked once): never a reason to leave the dashboard unsaved
        versions = body.get("versions") if isinstance(body, dict) else body
        newest = versions[0] if isinstance(versions, list) and versions else None
        return newest if isinstance(newest, dict) else None

    def current_org(self) -> dict[str, Any] | None:
        """The token's organization (`id`, `name`), where what it saves lands; None when Grafana
        does not say (asked once: a diagnostic, never a reason to fail provisioning)."""
        try:
            body = self._once("GET", "/api/org", None, None, (200,)).json()
        except (GrafanaError, ValueError):
            return None
        return body if isinstance(body, dict) and isinstance(body.get("id"), int) else None

    # ------------------------------------------------------------------ data sources
    def datasource_exists(self, uid: str) -> bool | None:
        """Whether Grafana has a data source with this uid (GET /api/datasources/uid/{uid}: 200 or
        404); None when the token may not read data sources (403: datasources:read), so none can tell."""
        resp = self.request("GET", f"/api/datasources/uid/{quote(uid, safe='')}", ok=(200, 403, 404))
        return None if resp.status_code == 403 else resp.status_code == 200

    # ------------------------------------------------------------------ annotations
    def create_annotation(self, body: dict[str, Any]) -> int:
        return int(self.request("POST", "/api/annotations", json=body).json()["id"])

    def patch_annotation(self, annotation_id: int, body: dict[str, Any]) -> None:
        self.request("PATCH", f"/api/annotations/{annotation_id}", json=body)

    def find_annotations(self, *, tags: list[str], from_ms: int, to_ms: int, limit: int = 10) -> list[dict[str, Any]]:
        params: list[tuple[str, str | int]] = [("from", from_ms), ("to", to_ms), ("limit", limit),
                                               ("type", "annotation")]
        params += [("tags", t) for t in tags]
        return list(self.request("GET", "/api/annotations", params=params).json())
