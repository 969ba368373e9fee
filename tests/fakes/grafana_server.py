"""A small local Grafana HTTP API server for tests, following contracts/README.md section 4.

- Auth: `Authorization: Bearer <token>`. No/unknown token -> 401 `{"message":"Unauthorized"}`;
  a token registered as a viewer -> 403 `{"message":"Access denied"}` on writes.
- POST /api/folders -> 200 folder object; 409 when the uid (or the title) already exists;
  400 without a title. GET /api/folders/{uid} -> 200 or 404. With `k8s_folders=True`, as
  Grafana 12 whose legacy folder API writes through its Kubernetes-style folder store: an
  existing uid is 412 `{"status":"version-mismatch","message":"the folder has been changed
  by someone else"}` (pkg/apimachinery/apierrors ToFolderErrorResponse maps the store's
  AlreadyExists so), and titles need not be unique.
- POST /api/dashboards/db -> 200 `{"id","uid","url","status":"success","version","slug"}`;
  400 for a missing title, a uid over 40 chars or an unknown folderUid;
  412 `{"message":...,"status":"version-mismatch"}` when not overwriting and the version
  is not the stored one; 412 `name-exists` when another uid has the same title in the folder
  and overwrite is false (with overwrite, that other dashboard is replaced and keeps its uid,
  as in Grafana; contracts §4 says "same uid" for name-exists, Grafana's code means same title).
  400 'Cannot save provisioned dashboard' over one marked `provisioned` (from files).
  GET/DELETE /api/dashboards/uid/{uid} -> 200, or 404
  `{"message":"Dashboard not found"}`. GET /api/dashboards/uid/{uid}/versions?limit -> newest
  first, each with `version`, `createdBy` and `message` ("Initial save" for the first, as
  Grafana words it); a list, or with `k8s_folders` Grafana 12's `{"versions": [...]}`.
- POST /api/annotations (time/timeEnd must be integer epoch ms) -> `{"message":"Annotation added","id":N}`;
  PATCH /api/annotations/{id} -> `{"message":"Annotation patched"}` or 404;
  GET /api/annotations?from&to&tags&matchAny&limit&type. Tags are kept and matched as Grafana
  does, a colon splitting key from value (tests/fakes/grafana_tags.py).
- GET /api/datasources/uid/{uid} -> 200 the data source (`id`, `uid`, `orgId`, `name`, `type`,
  `access`, `url`, `isDefault`, `jsonData`, `readOnly`, ...; docs developers/http_api/data_source.md
  "Get a single data source by UID"), or 404 `{"message":"Data source not found"}` (pkg/api/
  datasources.go); GET /api/datasources -> the list. A fresh Grafana has none: `add_datasource`.
- GET /api/health -> 200. GET /api/org -> the token's organization `{"id","name","address"}`
  (Grafana's "get current organization", docs/sources/developers/http_api/org.md); `org_id`
  says which, "Main Org." for 1.
- Faults on demand: `force(status, count, path=prefix, retry_after=s, body=...)`, `down()`/`up()`
  (connection refused: the socket is closed), `delay(seconds, count)`.
- Every request is recorded (`calls()`), every dashboard keeps its saved versions.

Binds 127.0.0.1 on a free port: `with FakeGrafana(tokens={"t": "admin"}) as g: g.url`.
"""
from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.grafana_tags import stored_tags, tags_match
from tests.fakes.local_http import LocalHTTPServer

_UID = re.compile(r"^[A-Za-z0-9_-]{1,40}$")


@dataclass
class FakeCall:
    method: str
    path: str
    status: int
    body: Any = None


@dataclass
class _Fault:
    status: int
    count: int
    path: str | None
    retry_after: str | None
    body: dict[str, Any] | None


@dataclass
class StoredDashboard:
    id: int
    uid: str
    folder_uid: str
    model: dict[str, Any]
    versions: list[dict[str, Any]] = field(default_factory=list)
    saved_by: list[tuple[str, str]] = field(default_factory=list)  # (login, message) per version
    provisioned: bool = False  # by Grafana's file provider: the API may not save over it

    @property
    def version(self) -> int:
        return int(self.model["version"])


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "dashboard"


class FakeGrafana:
    def __init__(self, tokens: dict[str, str] | None = None, *, k8s_folders: bool = False, org_id: int = 1) -> None:
        self.k8s_folders = k8s_folders
        self.org_id = org_id  # the organization of every token's service account
        self.tokens = dict(tokens if tokens is not None else {"test-token": "admin"})  # token -> admin|editor|viewer
        self.folders: dict[str, dict[str, Any]] = {}
        self.dashboards: dict[str, StoredDashboard] = {}
        self.annotations: dict[int, dict[str, Any]] = {}
        self.datasources: dict[str, dict[str, Any]] = {}  # uid -> the data source, as Grafana answers it
        self._calls: list[FakeCall] = []
        self._faults: list[_Fault] = []
        self._delays: list[float] = []
        self._next_id = 1
        self._login = ""  # who is calling (a service account named after its role)
        self._lock = threading.Lock()
        self._http = LocalHTTPServer(type("Handler", (_Handler,), {"fake": self}), server_class=_Server)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> FakeGrafana:
        self._http.start()
        return self

    def stop(self) -> None:
        self._http.stop()

    def down(self) -> None:
        """Stop listening (connections are refused); state is kept for `up()`."""
        self.stop()

    def up(self) -> None:
        """Listen again on the same port."""
        self.start()

    def __enter__(self) -> FakeGrafana:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return self._http.url

    # ------------------------------------------------------------------ test controls
    def force(self, status: int, count: int = 1, *, path: str | None = None, retry_after: str | None = None,
              body: dict[str, Any] | None = None) -> None:
        """The next `count` requests (to paths starting with `path`) get `status`."""
        with self._lock:
            self._faults.append(_Fault(status, count, path, retry_after, body))

    def delay(self, seconds: float, count: int = 1) -> None:
        with self._lock:
            self._delays.extend([seconds] * count)

    def calls(self, method: str | None = None, path: str | None = None) -> list[FakeCall]:
        with self._lock:
            return [c for c in self._calls if (method is None or c.method == method)
                    and (path is None or c.path.startswith(path))]

    def writes(self) -> list[FakeCall]:
        return [c for c in self.calls() if c.method in ("POST", "PATCH", "PUT", "DELETE") and c.status == 200]

    def add_datasource(self, uid: str, kind: str, name: str | None = None) -> None:
        """A data source made in Grafana (its UI, API or provisioning files) with this uid and type."""
        with self._lock:
            self.datasources[uid] = {
                "id": self._new_id(), "uid": uid, "orgId": self.org_id, "name": name or f"{kind} {uid}",
                "type": kind, "typeLogoUrl": "", "access": "proxy", "url": f"http://{kind}:9090", "user": "",
                "database": "", "basicAuth": False, "basicAuthUser": "", "withCredentials": False,
                "isDefault": False, "jsonData": {}, "secureJsonFields": {}, "version": 1, "readOnly": False}

    def edit_dashboard(self, uid: str, change: dict[str, Any], *, by: str = "alice", message: str = "") -> None:
        """Simulate a person saving the dashboard in the UI (bumps the version)."""
        with self._lock:
            d = self.dashboards[uid]
            d.model = {**d.model, **change, "version": d.version + 1}
            d.versions.append(d.model)
            d.saved_by.append((by, message))

    # ------------------------------------------------------------------ dispatch
    def handle(self, method: str, raw_path: str, headers: dict[str, str], raw: bytes
               ) -> tuple[int, dict[str, str], Any]:
        with self._lock:
            delay = self._delays.pop(0) if self._delays else 0.0
        if delay:
            time.sleep(delay)
        parts = urlsplit(raw_path)
        path, query = parts.path, parse_qs(parts.query)
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                return self._record(method, path, 400, {}, {"message": "bad request data"}, None)
        with self._lock:
            for f in self._faults:
                if f.count > 0 and (f.path is None or path.startswith(f.path)):
                    f.count -= 1
                    extra = {"Retry-After": f.retry_after} if f.retry_after is not None else {}
                    return self._record_locked(method, path, f.status, extra,
                                               f.body or {"message": f"forced {f.status}"}, body)
            role = self._role(headers)
            if role is None:
                return self._record_locked(method, path, 401, {}, {"message": "Unauthorized"}, body)
            if method != "GET" and role == "viewer":
                return self._record_locked(method, path, 403, {},
                                           {"message": "Access denied to save dashboard"}, body)
            self._login = f"sa-{role}"
            status, resp = self._route(method, path, query, body)
            return self._record_locked(method, path, status, {}, resp, body)

    def _record(self, method: str, path: str, status: int, extra: dict[str, str], resp: Any,
                body: Any) -> tuple[int, dict[str, str], Any]:
        with self._lock:
            return self._record_locked(method, path, status, extra, resp, body)

    def _record_locked(self, method: str, path: str, status: int, extra: dict[str, str], resp: Any,
                       body: Any) -> tuple[int, dict[str, str], Any]:
        self._calls.append(FakeCall(method, path, status, body))
        return status, extra, resp

    def _role(self, headers: dict[str, str]) -> str | None:
        auth = headers.get("authorization", "")
        if not auth.startswith("Bearer "):
            return None
        return self.tokens.get(auth.removeprefix("Bearer ").strip())

    def _route(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        if path == "/api/health" and method == "GET":
            return 200, {"database": "ok", "version": "11.6.0"}
        if path == "/api/org" and method == "GET":
            return 200, {"id": self.org_id, "name": "Main Org." if self.org_id == 1 else f"Org {self.org_id}",
                         "address": {"address1": "", "address2": "", "city": "", "zipCode": "", "state": "",
                                     "country": ""}}
        if path == "/api/datasources" and method == "GET":
            return 200, list(self.datasources.values())
        m = re.fullmatch(r"/api/datasources/uid/([^/]+)", path)
        if m and method == "GET":
            ds = self.datasources.get(m.group(1))
            return (200, ds) if ds else (404, {"message": "Data source not found"})
        if path == "/api/folders" and method == "POST":
            return self._create_folder(body)
        m = re.fullmatch(r"/api/folders/([^/]+)", path)
        if m and method == "GET":
            f = self.folders.get(m.group(1))
            return (200, f) if f else (404, {"message": "folder not found"})
        if path == "/api/dashboards/db" and method == "POST":
            return self._save_dashboard(body)
        m = re.fullmatch(r"/api/dashboards/uid/([^/]+)/versions", path)
        if m and method == "GET" and m.group(1) in self.dashboards:
            return 200, self._versions(self.dashboards[m.group(1)], int(query.get("limit", ["0"])[0]))
        m = re.fullmatch(r"/api/dashboards/uid/([^/]+)", path)
        if m:
            d = self.dashboards.get(m.group(1))
            if d is None:
                return 404, {"message": "Dashboard not found"}
            if method == "GET":
                return 200, {"dashboard": d.model, "meta": {
                    "isStarred": False, "url": f"/d/{d.uid}/{_slug(d.model['title'])}", "folderUid": d.folder_uid,
                    "folderId": self.folders[d.folder_uid]["id"] if d.folder_uid in self.folders else 0,
                    "slug": _slug(d.model["title"]), "provisioned": d.provisioned, "version": d.version}}
            if method == "DELETE":
                del self.dashboards[d.uid]
                return 200, {"title": d.model["title"], "message": f"Dashboard {d.model['title']} deleted",
                             "id": d.id}
        if path == "/api/annotations" and method == "POST":
            return self._add_annotation(body)
        if path == "/api/annotations" and method == "GET":
            return 200, self._find_annotations(query)
        m = re.fullmatch(r"/api/annotations/(\d+)", path)
        if m and method == "PATCH":
            return self._patch_annotation(int(m.group(1)), body)
        return 404, {"message": "Not found"}

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id - 1

    def _create_folder(self, body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict) or not body.get("title"):
            return 400, {"message": "folder title cannot be empty"}
        uid = body.get("uid") or f"f{self._next_id}"
        if not _UID.match(uid):
            return 400, {"message": "uid contains illegal characters"}
        if uid in self.folders and self.k8s_folders:
            return 412, {"status": "version-mismatch", "message": "the folder has been changed by someone else"}
        if uid in self.folders:
            return 409, {"message": "a folder with the same uid already exists"}
        if not self.k8s_folders and any(f["title"] == body["title"] for f in self.folders.values()):
            return 409, {"message": "a folder or dashboard in the general folder with the same name already exists"}
        folder = {"id": self._new_id(), "uid": uid, "title": body["title"],
                  "url": f"/dashboards/f/{uid}/{_slug(body['title'])}",
                  "hasAcl": False, "canSave": True, "canEdit": True, "canAdmin": True, "createdBy": "admin",
                  "created": "2026-01-01T00:00:00Z", "updatedBy": "admin", "updated": "2026-01-01T00:00:00Z",
                  "version": 1}
        self.folders[uid] = folder
        return 200, folder

    def _save_dashboard(self, body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("dashboard"), dict):
            return 400, {"message": "bad request data"}
        dash = body["dashboard"]
        overwrite = bool(body.get("overwrite"))
        folder_uid = body.get("folderUid") or ""
        if not dash.get("title"):
            return 400, {"message": "Dashboard title cannot be empty"}
        uid = dash.get("uid") or f"auto{self._next_id}"
        if len(uid) > 40:
            return 400, {"message": "uid too long, max 40 characters"}
        if not _UID.match(uid):
            return 400, {"message": "uid contains illegal characters"}
        if folder_uid and folder_uid not in self.folders:
            return 400, {"message": "folder not found"}
        existing = self.dashboards.get(uid)
        if existing is not None and not overwrite and dash.get("version") != existing.version:
            return 412, {"message": "The dashboard has been changed by someone else", "status": "version-mismatch"}
        if existing is not None and existing.provisioned:  # a provider with allowUiUpdates: false
            return 400, {"message": "Cannot save provisioned dashboard"}
        same_name = [d for d in self.dashboards.values()
                     if d.uid != uid and d.folder_uid == folder_uid and d.model["title"] == dash["title"]]
        if same_name and not overwrite:
            return 412, {"message": "A dashboard with the same name in the folder already exists",
                         "status": "name-exists"}
        if same_name:
            # Grafana's getExistingDashboardByTitleAndFolder: with overwrite the other dashboard
            # (same title, same folder, another uid) is replaced, keeping its id and uid.
            existing, uid = same_name[0], same_name[0].uid
        version = existing.version + 1 if existing else 1
        did = existing.id if existing else self._new_id()
        model = {**dash, "id": did, "uid": uid, "version": version}
        if existing is None:
            existing = self.dashboards[uid] = StoredDashboard(did, uid, folder_uid, model)
        existing.model, existing.folder_uid = model, folder_uid
        existing.versions.append(model)
        existing.saved_by.append((self._login, str(body.get("message") or "")))
        slug = _slug(dash["title"])
        return 200, {"id": did, "uid": uid, "url": f"/d/{uid}/{slug}", "status": "success", "version": version,
                     "slug": slug}

    def _versions(self, d: StoredDashboard, limit: int) -> Any:
        out = [{"id": i + 1, "dashboardUid": d.uid, "parentVersion": i, "restoredFrom": 0, "version": i + 1,
                "created": "2026-01-01T00:00:00Z", "createdBy": who, "message": msg if i else "Initial save",
                "data": model} for i, (model, (who, msg)) in enumerate(zip(d.versions, d.saved_by, strict=True))]
        out = out[::-1][:limit or None]
        return {"versions": out, "continueToken": ""} if self.k8s_folders else out

    @staticmethod
    def _check_times(body: dict[str, Any]) -> str | None:
        for key in ("time", "timeEnd"):
            if key in body and (isinstance(body[key], bool) or not isinstance(body[key], int)):
                # Grafana decodes these into int64: a float or string does not unmarshal.
                return f"bad request data: {key} must be an integer (epoch milliseconds)"
        return None

    def _add_annotation(self, body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict):
            return 400, {"message": "bad request data"}
        err = self._check_times(body)
        if err:
            return 400, {"message": err}
        if not body.get("text"):
            return 400, {"message": "Failed to save annotation: text is required"}
        aid = self._new_id()
        t = body.get("time") or int(time.time() * 1000)
        self.annotations[aid] = {"id": aid, "dashboardUID": body.get("dashboardUID", ""),
                                 "panelId": body.get("panelId", 0),
                                 "time": t, "timeEnd": body.get("timeEnd", t), "text": body["text"],
                                 "tags": stored_tags(body.get("tags") or []), "type": "annotation"}
        return 200, {"message": "Annotation added", "id": aid}

    def _patch_annotation(self, aid: int, body: Any) -> tuple[int, Any]:
        if aid not in self.annotations:
            return 404, {"message": "Could not find annotation to update"}
        if not isinstance(body, dict):
            return 400, {"message": "bad request data"}
        err = self._check_times(body)
        if err:
            return 400, {"message": err}
        a = self.annotations[aid]
        for key in ("text", "time", "timeEnd"):
            if key in body:
                a[key] = body[key]
        if "tags" in body:
            a["tags"] = stored_tags(body["tags"] or [])
        return 200, {"message": "Annotation patched"}

    def _find_annotations(self, query: dict[str, list[str]]) -> list[dict[str, Any]]:
        tags = query.get("tags", [])
        frm = int(query.get("from", ["0"])[0])
        to = int(query.get("to", [str(2**62)])[0])
        limit = int(query.get("limit", ["100"])[0])
        hits = [a for a in self.annotations.values()
                if tags_match(a["tags"], tags, match_any=query.get("matchAny", ["false"])[0] == "true")
                and a["time"] <= to and a["timeEnd"] >= frm]
        hits.sort(key=lambda a: a["time"], reverse=True)
        return hits[:limit]


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (timeout tests) leaves a broken pipe behind; that is expected here.
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out at once: no 40 ms delayed-ACK stall

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        fake: FakeGrafana = self.fake  # type: ignore[attr-defined]
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, extra, body = fake.handle(self.command, self.path, headers, raw)
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in extra.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve  # http.server names its handlers so

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass
