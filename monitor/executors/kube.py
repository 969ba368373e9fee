"""Kubernetes plumbing for the kserve and argo executors: the API client, reads and
patches of one namespaced object under optimistic concurrency, errors translated once.

Optimistic concurrency: every patch carries the `metadata.resourceVersion` of the read it
was computed from, and the API server answers 409 Conflict when the object changed since
(the same precondition `kubectl replace` relies on). On a 409 the object is read again
and the patch recomputed once: the recomputation may find nothing left to do, or that
someone else moved the object on, and then says so instead of overwriting them.

Transient failures (429, 5xx, connection errors, timeouts) are retried a bounded number
of times per request, after the server's `Retry-After` when it sends one (API Priority and
Fairness does on its 429s; capped, and never past the step's deadline); what is left is an
`ExecutorError` naming the object and the verb. A request's timeout bounds its whole
answer, not each read of it.
"""
from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, stop_any, wait_exponential
from tenacity.stop import stop_base

from alerts.receivers.http import retry_after_s
from monitor.executors.base import STEP_DEADLINE, ExecutorError, PastDeadline, before_write, request_timeout
from monitor.executors.config import KubeTargetConfig

log = logging.getLogger("vigil.executors.kube")
JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
Patch = dict[str, Any] | list[dict[str, Any]]
T = TypeVar("T")
MAX_RETRY_AFTER_S = 10.0  # a longer Retry-After ends this try: the rollback resumes next cycle
# How the API server words a validating admission webhook's refusal (webhook/errors.ToStatusErr).
WEBHOOK_DENIAL = re.compile(r'admission webhook "(?P<hook>[^"]+)" denied the request:?\s*(?P<said>.*)', re.S)


def api_client_at(url: str) -> k8s.ApiClient:
    """A client for a plain base URL (`kubectl proxy`, a local test server)."""
    conf = k8s.Configuration(host=url.rstrip("/"))
    conf.retries = 0  # KubeClient retries; urllib3's own retries would multiply its attempts
    return k8s.ApiClient(conf)


def make_api_client(cfg: KubeTargetConfig, base_dir: str | Path = ".") -> k8s.ApiClient:
    """A client for `cfg`: a plain base URL, the pod's service account, or a kubeconfig."""
    if cfg.api_url:
        return api_client_at(cfg.api_url)
    conf = k8s.Configuration()
    conf.retries = 0  # as above
    try:
        if cfg.in_cluster:
            k8s_config.load_incluster_config(client_configuration=conf)
        else:
            path = str(Path(base_dir) / Path(cfg.kubeconfig).expanduser()) if cfg.kubeconfig else None
            k8s_config.load_kube_config(config_file=path, context=cfg.context, client_configuration=conf)
    except (ConfigException, OSError) as e:
        raise ExecutorError(False, f"cannot configure the Kubernetes client for {cfg.namespace}/{cfg.name}: {e}",
                            reason="config") from e
    except Exception as e:  # not YAML, or not a kubeconfig: the loader fails in its own ways (yaml, TypeError)
        # The type only: a message may quote the file, and a kubeconfig holds credentials.
        raise ExecutorError(False, f"cannot configure the Kubernetes client for {cfg.namespace}/{cfg.name}: the "
                                   f"credentials could not be read ({type(e).__name__}; is the kubeconfig valid?)",
                            reason="config") from e
    return k8s.ApiClient(conf)


@dataclass(frozen=True)
class ObjectRef:
    """One namespaced custom object, e.g. inferenceservices.serving.kserve.io ml/recommender."""

    group: str
    version: str
    plural: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.plural}.{self.group} {self.namespace}/{self.name}"


class KubeClient:
    """Reads and patches through the official client, retried and translated in one place."""

    def __init__(self, api: k8s.ApiClient, *, timeout_s: float = 10.0, max_attempts: int = 3,
                 backoff_s: float = 0.2) -> None:
        self.api, self.timeout_s, self.max_attempts, self.backoff_s = api, timeout_s, max_attempts, backoff_s
        self.custom = k8s.CustomObjectsApi(api)
        self.apps = k8s.AppsV1Api(api)

    @property
    def host(self) -> str:
        return str(self.api.configuration.host)

    def get(self, ref: ObjectRef) -> dict[str, Any]:
        obj = self._call("get", ref, None, lambda: self._complete(lambda t: self.custom.get_namespaced_custom_object(
            ref.group, ref.version, ref.namespace, ref.plural, ref.name, _preload_content=False, _request_timeout=t)))
        return _mapping(obj, ref)

    def patch(self, ref: ObjectRef, body: Patch, *, subresource: str | None = None) -> dict[str, Any]:
        """A list is sent as a JSON patch, a mapping as a JSON merge patch. Every write of the
        kserve and argo executors passes here: each attempt is checked first (base.before_write:
        the lease, the rollback still pending), a retry after a wait too."""
        content_type = JSON_PATCH if isinstance(body, list) else MERGE_PATCH
        method = (self.custom.patch_namespaced_custom_object_status if subresource == "status"
                  else self.custom.patch_namespaced_custom_object)

        def send() -> Any:
            before_write()
            return self._complete(lambda t: method(ref.group, ref.version, ref.namespace, ref.plural, ref.name, body,
                                                   _content_type=content_type, _preload_content=False,
                                                   _request_timeout=t))

        return _mapping(self._call("patch", ref, subresource, send), ref)

    def list_replica_sets(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        """ReplicaSets matching a label selector, as the API's own JSON (no typed round trip,
        so a pod template copied from one loses no field this client does not know)."""
        ref = ObjectRef("apps", "v1", "replicasets", namespace, "")
        listed = self._call("list", ref, None, lambda: self._complete(lambda t: self.apps.list_namespaced_replica_set(
            namespace, label_selector=selector, _preload_content=False, _request_timeout=t)))
        return list(_mapping(listed, ref).get("items") or [])

    def patch_fresh(self, ref: ObjectRef, make: Callable[[dict[str, Any]], Patch | None], *,
                    subresource: str | None = None) -> tuple[dict[str, Any], bool]:
        """Read, compute a patch from what was read (None: nothing to do), send it; on a 409
        read again and recompute once. Returns the object after, and whether it changed."""
        for attempt in (1, 2):
            obj = self.get(ref)
            body = make(obj)
            if body is None:
                return obj, False
            try:
                return self.patch(ref, body, subresource=subresource), True
            except ExecutorError as e:
                if e.reason != "conflict" or attempt == 2:
                    raise
                log.info("conflict on %s, reading it again", ref, extra={"resource": str(ref)})
        raise AssertionError("unreachable")  # pragma: no cover

    def _wait(self, state: RetryCallState) -> float:
        """Backoff doubling from backoff_s, or the server's Retry-After if longer (one past
        MAX_RETRY_AFTER_S or the step's deadline ends the try: asking earlier than the
        server said only adds to its load)."""
        backoff = wait_exponential(multiplier=self.backoff_s, max=5.0)(state)
        error = state.outcome.exception() if state.outcome else None
        headers = getattr(error, "headers", None) if isinstance(error, ApiException) else None
        hinted = retry_after_s(headers.get("Retry-After"), time.time()) if headers else None
        return backoff if hinted is None else max(backoff, hinted)

    def _complete(self, send: Callable[[float], Any]) -> Any:
        """Send (given this request's timeout) and read the whole answer within that timeout:
        urllib3's bounds each read, and an answer sent a byte at a time would hold the step
        past its deadline. The answer parsed as JSON (its text when it is not JSON)."""
        timeout = self._timeout()
        ends, chunks = time.monotonic() + timeout, []
        resp = send(timeout)  # urllib3's response, its body unread (_preload_content=False)
        try:
            while chunk := resp.read1(65536):
                chunks.append(chunk)
                if time.monotonic() > ends:
                    resp.close()  # the rest unread: this connection must not serve another request
                    raise TimeoutError(f"no complete answer within {timeout:g} s")
        finally:
            resp.release_conn()
        raw = b"".join(chunks)
        try:
            return json.loads(raw)
        except ValueError:
            return raw.decode("utf-8", "replace")

    def _timeout(self) -> float:
        return request_timeout(self.timeout_s, STEP_DEADLINE.get())

    def _call(self, verb: str, ref: ObjectRef, subresource: str | None, fn: Callable[[], T]) -> T:
        # Bounded by the running step's deadline too (Guarded sets it): timeout_s x
        # max_attempts would otherwise hold a model's cycle, or a person's request, past it.
        stop = stop_any(stop_after_attempt(self.max_attempts), PastDeadline(STEP_DEADLINE.get()), _WaitTooLong())
        retrying = Retrying(stop=stop, reraise=True, wait=self._wait, retry=retry_if_exception(_transient))
        try:
            return retrying(fn)
        except ApiException as e:
            raise _api_error(e, verb, ref, subresource) from e
        except (urllib3.exceptions.HTTPError, OSError) as e:
            raise ExecutorError(True, f"cannot {verb} {_target(ref, subresource)}: the Kubernetes API at "
                                      f"{self.host} did not answer: {e}", reason="unavailable") from e


class _WaitTooLong(stop_base):
    def __call__(self, state: RetryCallState) -> bool:
        return (state.upcoming_sleep or 0.0) > MAX_RETRY_AFTER_S


def _mapping(obj: object, ref: ObjectRef) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise ExecutorError(False, f"{ref}: the Kubernetes API answered with {type(obj).__name__}, expected a JSON "
                                   f"object", reason="rejected")
    return obj


def _transient(e: BaseException) -> bool:
    if isinstance(e, ApiException):
        return e.status == 429 or (e.status or 0) >= 500
    return isinstance(e, (urllib3.exceptions.HTTPError, OSError))


def _target(ref: ObjectRef, subresource: str | None) -> str:
    if not ref.name:
        return f"{ref.plural}.{ref.group} in namespace {ref.namespace}"
    return f"{ref}" + (f" ({subresource} subresource)" if subresource else "")


def _message(e: ApiException) -> str:
    """The `message` of the Status object the API server sends with an error."""
    try:
        body = json.loads(e.body or "")
    except ValueError:
        return (e.body or e.reason or "").strip()[:300]
    return str(body.get("message") or e.reason or "") if isinstance(body, dict) else str(e.reason or "")


def _api_error(e: ApiException, verb: str, ref: ObjectRef, subresource: str | None) -> ExecutorError:
    target, said, status = _target(ref, subresource), _message(e), e.status or 0
    resource = ref.plural + (f"/{subresource}" if subresource else "")
    if status == 404:
        return ExecutorError(False, f"{target} not found (HTTP 404 on {verb}): check namespace and name under "
                                    f"models[].serving and that the {ref.group} CRD is installed; API server: {said}",
                             reason="not_found")
    denial = WEBHOOK_DENIAL.search(said) if status in (400, 403) else None
    if denial:
        # 403 Forbidden like RBAC's (controller-runtime's `Denied`): policy refused this change,
        # RBAC is fine; a retry sends the same change and is refused the same way.
        return ExecutorError(False, f"admission webhook \"{denial['hook']}\" refused to {verb} {target} (HTTP "
                                    f"{status}): {denial['said'] or 'without explanation'} (a policy refused the "
                                    f"change; Vigil's permissions are fine)", reason="rejected")
    if status == 403:
        return ExecutorError(False, f"forbidden to {verb} {target} (HTTP 403): the service account lacks RBAC verb "
                                    f"'{verb}' on resource '{resource}' in apiGroup '{ref.group}' in namespace "
                                    f"'{ref.namespace}'; API server: {said}", reason="forbidden")
    if status == 401:
        # Retryable: most often a token that expired or rotated since the client last read it
        # (the client refreshes such tokens); one that stays wrong fails after the attempts.
        return ExecutorError(True, f"cannot {verb} {target}: the Kubernetes API rejected the credentials "
                                   f"(HTTP 401): {said}; a token refreshed since may pass at the next attempt",
                             reason="unauthorized")
    if status == 409:
        return ExecutorError(True, f"cannot {verb} {target}: it changed since it was read (HTTP 409 Conflict): "
                                   f"{said}", reason="conflict")
    if status == 429 or status >= 500:
        return ExecutorError(True, f"cannot {verb} {target}: the Kubernetes API kept failing (HTTP {status}): "
                                   f"{said}", reason="unavailable")
    return ExecutorError(False, f"cannot {verb} {target}: the Kubernetes API rejected it (HTTP {status}): {said}",
                         reason="rejected")


def dig(obj: Any, *path: str) -> Any:
    """obj[a][b][c], or None where a level is missing or not a mapping."""
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def reconciled(obj: dict[str, Any]) -> bool:
    """Has the object's controller observed its latest spec (status.observedGeneration, a
    numeric string in Argo Rollouts, >= metadata.generation)? Not for KServe, whose
    observedGeneration is its Knative Service's (see kserve.py)."""
    generation, observed = dig(obj, "metadata", "generation"), dig(obj, "status", "observedGeneration")
    try:
        return generation is not None and observed is not None and int(observed) >= int(generation)
    except (TypeError, ValueError):
        return False
