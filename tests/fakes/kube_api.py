"""A small local Kubernetes API server for custom resources, for the executor tests.

Contract (what it follows of the Kubernetes API's documented behaviour):
- Paths: `/apis/{group}/{version}/namespaces/{ns}/{plural}/{name}` (GET, PATCH, PUT), its
  `/status` subresource (GET, PATCH, PUT) and the collection
  `/apis/{group}/{version}/namespaces/{ns}/{plural}` (GET list, `labelSelector` with
  `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k`, `!k`). Built-in kinds use the
  same shape (ReplicaSets: `/apis/apps/v1/namespaces/{ns}/replicasets?labelSelector=...`).
  Objects are seeded with `put_object`; there is no create, delete or watch (a list with
  `watch=true` is answered 400). Credentials are not checked.
- PATCH bodies: `application/merge-patch+json` (RFC 7386: null deletes a key, lists are
  replaced whole) and `application/json-patch+json` (RFC 6902: add, remove, replace, move,
  copy, test; a failed `test` or a bad path is 422 Invalid). Strategic merge patch and
  apply patches are 415, as for custom resources on a real server.
- `metadata.resourceVersion` is a string from one counter, incremented on every write.
  PUT must carry the current resourceVersion (absent: 422 Invalid, as for custom
  resources); PATCH is unconditional unless the patched object carries a resourceVersion,
  which must be the current one. A stale one is 409 with a `Status` of reason `Conflict`
  ("the object has been modified; please apply your changes to the latest version").
- `metadata.generation` starts at 1 and grows when a write changes anything but
  `metadata` and `status` (anything but `metadata` without the status subresource);
  name, namespace, uid, creationTimestamp and generation are the server's (a write cannot
  change them). With the status subresource on (the default), writes to the main resource
  ignore `status` and writes to `/status` change only `status`; with it off
  (`put_object(..., status_subresource=False)`) `/status` is 404, as on a CRD without one.
- Errors are `Status` objects (`kind: Status`, `status: Failure`, `message`, `reason`,
  `details: {name, group, kind}`, `code`): 404 `NotFound` ('<plural>.<group> "<name>" not
  found'), 403 `Forbidden` on demand (`forbid(verb, plural, subresource)`: 'User
  "system:serviceaccount:vigil:vigil" cannot <verb> resource "<plural>[/<sub>]" in API group
  "<group>" in the namespace "<ns>"'), 409 `Conflict`, 422 `Invalid`, 415, and injected
  500 `InternalError` / 503 `ServiceUnavailable` / 429 / 401 `Unauthorized` (`fail(status, count=N)`: the next N
  requests of any kind, in order; `retry_after=S` adds the `Retry-After: S` header, and
  `details.retryAfterSeconds` to a Status; a 429 is plain text 'Too many requests, please
  try again later.', as API Priority and Fairness answers before any API handler) and delays
  (`delay(seconds, count=N)`). A validating
  admission webhook's refusal (`deny(plural, webhook, message)`: every write to that
  resource) is 403 `Forbidden` too, as the API server wraps it ('admission webhook
  "<webhook>" denied the request: <message>'; controller-runtime's `Denied` answers 403,
  so KServe's, Gatekeeper's and Kyverno's refusals look like RBAC's but for the message).
- Test hooks that are not API: `interleave(fn)` runs `fn` just before the next write is
  handled (another writer getting in between a read and a write), `controller_status(...)`
  writes `status` as a controller would (with `observedGeneration`), and `requests` logs
  every request (method, path, query, content type, parsed body, status).
Binds 127.0.0.1 on a free port; `with FakeKubeApi() as kube:` and give `kube.url` to the client.
"""
from __future__ import annotations

import copy
import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.kube_patch import json_patch, matches, merge_patch
from tests.fakes.local_http import LocalHTTPServer

MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
_PATH = re.compile(r"^/apis/(?P<group>[^/]+)/(?P<version>[^/]+)/namespaces/(?P<ns>[^/]+)/(?P<plural>[^/]+)"
                   r"(?:/(?P<name>[^/]+))?(?:/(?P<sub>[^/]+))?$")
_PLURALS = {"InferenceService": "inferenceservices", "Rollout": "rollouts", "ReplicaSet": "replicasets"}
USER = "system:serviceaccount:vigil:vigil"


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> None:
        self.code, self.reason, self.message, self.details = code, reason, message, details or {}
        super().__init__(message)

    def status(self) -> dict[str, Any]:
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": self.message,
                "reason": self.reason, "details": self.details, "code": self.code}


@dataclass
class LoggedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    content_type: str
    body: Any
    status: int = 0
    at: float = field(default_factory=time.monotonic)  # when it arrived


@dataclass
class _Fault:
    status: int
    count: int
    retry_after: int | None = None


@dataclass
class _Stored:
    obj: dict[str, Any]
    status_subresource: bool = True


@dataclass
class _State:
    objects: dict[tuple[str, str, str, str, str], _Stored] = field(default_factory=dict)
    revision: int = 100
    forbidden: set[tuple[str, str, str | None]] = field(default_factory=set)
    denials: dict[str, tuple[str, str]] = field(default_factory=dict)  # plural -> (webhook, message)
    faults: list[_Fault] = field(default_factory=list)
    delays: list[list[float]] = field(default_factory=list)  # [seconds, count]
    interleaved: list[Callable[[], None]] = field(default_factory=list)
    requests: list[LoggedRequest] = field(default_factory=list)


# --------------------------------------------------------------------------- server
class FakeKubeApi:
    def __init__(self) -> None:
        self.state = _State()
        self.lock = threading.RLock()
        handler = type("Handler", (_Handler,), {"api": self})
        self._http = LocalHTTPServer(handler)
        self.url = self._http.url

    def __enter__(self) -> FakeKubeApi:
        self._http.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.stop()

    # seeding and inspection (not API)
    def put_object(self, obj: dict[str, Any], *, plural: str | None = None, status_subresource: bool = True) -> None:
        obj = copy.deepcopy(obj)
        group, _, version = obj["apiVersion"].rpartition("/")
        meta = obj.setdefault("metadata", {})
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("generation", 1)
        meta.setdefault("creationTimestamp", "2026-11-20T08:00:00Z")
        with self.lock:
            meta["resourceVersion"] = self._next_rv()
            key = (group, version, meta["namespace"], plural or _PLURALS[obj["kind"]], meta["name"])
            self.state.objects[key] = _Stored(obj, status_subresource)

    def get_object(self, group: str, version: str, ns: str, plural: str, name: str) -> dict[str, Any]:
        with self.lock:
            return copy.deepcopy(self.state.objects[(group, version, ns, plural, name)].obj)

    def controller_status(self, group: str, version: str, ns: str, plural: str, name: str,
                          status: dict[str, Any]) -> None:
        """Write `status` as the object's controller would, having observed the current generation."""
        with self.lock:
            obj = self.state.objects[(group, version, ns, plural, name)].obj
            obj["status"] = {**copy.deepcopy(status), "observedGeneration": obj["metadata"]["generation"]}
            obj["metadata"]["resourceVersion"] = self._next_rv()

    def edit(self, group: str, version: str, ns: str, plural: str, name: str,
             change: Callable[[dict[str, Any]], None]) -> None:
        """Another writer changes the object (resourceVersion and, for spec, generation grow)."""
        with self.lock:
            stored = self.state.objects[(group, version, ns, plural, name)]
            before = _spec_part(stored.obj, stored.status_subresource)
            change(stored.obj)
            self._bump(stored.obj, before, stored.status_subresource)

    @property
    def requests(self) -> list[LoggedRequest]:
        with self.lock:
            return list(self.state.requests)

    def writes(self) -> list[LoggedRequest]:
        return [r for r in self.requests if r.method in ("PATCH", "PUT") and 200 <= r.status < 300]

    # fault injection (not API)
    def forbid(self, verb: str, plural: str, subresource: str | None = None) -> None:
        with self.lock:
            self.state.forbidden.add((verb, plural, subresource))

    def deny(self, plural: str, webhook: str, message: str) -> None:
        """A validating admission webhook refuses every write to `plural` from now on."""
        with self.lock:
            self.state.denials[plural] = (webhook, message)

    def fail(self, status: int, count: int = 1, retry_after: int | None = None) -> None:
        with self.lock:
            self.state.faults.append(_Fault(status, count, retry_after))

    def delay(self, seconds: float, count: int = 1) -> None:
        with self.lock:
            self.state.delays.append([seconds, count])

    def interleave(self, fn: Callable[[], None]) -> None:
        with self.lock:
            self.state.interleaved.append(fn)

    # internals
    def _next_rv(self) -> str:
        self.state.revision += 1
        return str(self.state.revision)

    def _bump(self, obj: dict[str, Any], spec_before: Any, status_subresource: bool = True) -> None:
        obj["metadata"]["resourceVersion"] = self._next_rv()
        if _spec_part(obj, status_subresource) != spec_before:
            obj["metadata"]["generation"] = int(obj["metadata"].get("generation", 1)) + 1

    def handle(self, method: str, path: str, query: dict[str, list[str]], ctype: str, body: Any) -> dict[str, Any]:
        m = _PATH.match(path)
        if not m:
            raise ApiError(404, "NotFound", f"the server could not find the requested resource ({path})")
        g, v, ns, plural, name, sub = (m.group(k) for k in ("group", "version", "ns", "plural", "name", "sub"))
        verb = {"GET": "get" if name else "list", "PATCH": "patch", "PUT": "update"}.get(method)
        if verb is None:
            raise ApiError(405, "MethodNotAllowed", f"{method} is not supported by this fake")
        if (verb, plural, sub) in self.state.forbidden:
            where = f'{plural}/{sub}' if sub else plural
            what = f'{plural}.{g} "{name}"' if name else f"{plural}.{g}"  # a list names no object
            raise ApiError(403, "Forbidden", f'{what} is forbidden: User "{USER}" cannot {verb} '
                                             f'resource "{where}" in API group "{g}" in the namespace "{ns}"',
                           {"name": name, "group": g, "kind": plural})
        if not name:
            return self._list(g, v, ns, plural, query)
        stored = self.state.objects.get((g, v, ns, plural, name))
        if stored is None or (sub is not None and (sub != "status" or not stored.status_subresource)):
            raise ApiError(404, "NotFound", f'{plural}.{g} "{name}" not found', {"name": name, "group": g,
                                                                                  "kind": plural})
        if method == "GET":
            return copy.deepcopy(stored.obj)
        if plural in self.state.denials:
            hook, said = self.state.denials[plural]
            raise ApiError(403, "Forbidden", f'admission webhook "{hook}" denied the request: {said}',
                           {"name": name, "group": g, "kind": plural})
        return self._write(stored, method, sub, ctype, body, {"name": name, "group": g, "kind": plural})

    def _list(self, g: str, v: str, ns: str, plural: str, query: dict[str, list[str]]) -> dict[str, Any]:
        if query.get("watch", ["false"])[0] == "true":
            raise ApiError(400, "BadRequest", "watch is not supported by this fake")
        selector = query.get("labelSelector", [""])[0]
        items = [copy.deepcopy(s.obj) for (g2, v2, ns2, p2, _), s in sorted(self.state.objects.items())
                 if (g2, v2, ns2, p2) == (g, v, ns, plural)
                 and matches(s.obj.get("metadata", {}).get("labels") or {}, selector)]
        return {"kind": "List", "apiVersion": f"{g}/{v}", "metadata": {"resourceVersion": str(self.state.revision)},
                "items": items}

    def _write(self, stored: _Stored, method: str, sub: str | None, ctype: str, body: Any,
               details: dict[str, Any]) -> dict[str, Any]:
        if self.state.interleaved:
            self.state.interleaved.pop(0)()
        current = stored.obj
        meta = current["metadata"]
        new = _patched(current, method, ctype, body, meta["name"])
        sent_rv = (new.get("metadata") or {}).get("resourceVersion")
        if method == "PUT" and not sent_rv:
            raise ApiError(422, "Invalid", f'{details["kind"]}.{details["group"]} "{meta["name"]}" is invalid: '
                                           "metadata.resourceVersion: Invalid value: 0x0: must be specified for an "
                                           "update", details)
        if sent_rv is not None and sent_rv != meta["resourceVersion"]:
            raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {details["kind"]}.{details["group"]} '
                                            f'"{meta["name"]}": the object has been modified; please apply your '
                                            "changes to the latest version and try again", details)
        merged = _subresource_rules(current, new, sub, stored.status_subresource)
        before = _spec_part(current, stored.status_subresource)
        stored.obj = merged
        self._bump(merged, before, stored.status_subresource)
        return copy.deepcopy(merged)


def _patched(current: dict[str, Any], method: str, ctype: str, body: Any, name: str) -> dict[str, Any]:
    if method == "PUT":
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "the body of a PUT must be an object")
        return copy.deepcopy(body)
    if ctype == MERGE:
        return merge_patch(current, body)
    if ctype == JSON_PATCH:
        if not isinstance(body, list):
            raise ApiError(400, "BadRequest", "a JSON patch must be a list of operations")
        try:
            return json_patch(current, body)
        except ValueError as e:
            raise ApiError(422, "Invalid", f'"{name}" is invalid: {e}') from None
    raise ApiError(415, "UnsupportedMediaType", f"the body of the request was in an unknown format - accepted "
                                                f"media types include: {JSON_PATCH}, {MERGE}")


def _subresource_rules(current: dict[str, Any], new: dict[str, Any], sub: str | None,
                       status_subresource: bool) -> dict[str, Any]:
    """With the status subresource, the main resource keeps its status and /status changes only status."""
    fixed = {k: current["metadata"][k] for k in ("name", "namespace", "uid", "creationTimestamp", "generation")
             if k in current["metadata"]}
    if sub == "status":
        out = copy.deepcopy(current)
        if "status" in new:
            out["status"] = new["status"]
        else:
            out.pop("status", None)
        return out
    out = copy.deepcopy(new)
    out["metadata"] = {**(out.get("metadata") or {}), **fixed}
    if status_subresource:
        if "status" in current:
            out["status"] = copy.deepcopy(current["status"])
        else:
            out.pop("status", None)
    return out


def _spec_part(obj: dict[str, Any], status_subresource: bool = True) -> Any:
    """What a change of bumps the generation: all but metadata, and but status when the CRD
    has the status subresource (apiextensions-apiserver's PrepareForUpdate)."""
    skip = ("metadata", "status") if status_subresource else ("metadata",)
    return {k: v for k, v in obj.items() if k not in skip}


class _Handler(BaseHTTPRequestHandler):
    api: FakeKubeApi
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _serve(self, method: str) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        body = json.loads(raw) if raw else None
        entry = LoggedRequest(method, url.path, query, ctype, body)
        self._sleep_if_delayed()
        retry_after: int | None = None
        with self.api.lock:
            self.api.state.requests.append(entry)
            try:
                fault, retry_after = self._take_fault()
                if fault:
                    reason = {500: "InternalError", 503: "ServiceUnavailable", 429: "TooManyRequests",
                              401: "Unauthorized"}.get(fault, "")
                    details = {} if retry_after is None else {"retryAfterSeconds": retry_after}
                    # kube-apiserver's 401 (authentication failed) says no more than this
                    said = "Unauthorized" if fault == 401 else f"injected fault {fault}"
                    raise ApiError(fault, reason, said, details)
                code, payload = 200, self.api.handle(method, url.path, query, ctype, body)
            except ApiError as e:
                code, payload = e.code, e.status()
            entry.status = code
        data, ctype_out = json.dumps(payload).encode(), "application/json"
        if code == 429:  # APF and max-in-flight answer before any API handler, with http.Error
            data, ctype_out = b"Too many requests, please try again later.\n", "text/plain; charset=utf-8"
        self.send_response(code)
        if retry_after is not None:
            self.send_header("Retry-After", str(retry_after))
        self.send_header("Content-Type", ctype_out)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _take_fault(self) -> tuple[int | None, int | None]:
        """The next injected fault's status and Retry-After, (None, None) when there is none."""
        faults = self.api.state.faults
        if not faults:
            return None, None
        faults[0].count -= 1
        fault = faults[0]
        if fault.count <= 0:
            faults.pop(0)
        return fault.status, fault.retry_after

    def _sleep_if_delayed(self) -> None:
        with self.api.lock:
            delays = self.api.state.delays
            seconds = 0.0
            if delays:
                seconds = delays[0][0]
                delays[0][1] -= 1
                if delays[0][1] <= 0:
                    delays.pop(0)
        if seconds:
            time.sleep(seconds)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_PUT(self) -> None:
        self._serve("PUT")
