"""`kserve`: a KServe InferenceService (serving.kserve.io/v1beta1) through the Kubernetes API.

Which version is served, read from the object:
- `spec.predictor.model.storageUri` (or a framework predictor's, `sklearn.storageUri`, ...)
  matched against `storage_uri_template` (e.g.
  `s3://models/{registry}/{version}`) gives the version of the latest revision, which
  serves all traffic, or `canaryTrafficPercent` of it while a canary is in progress
  (then that canary version is what a rollback moves away from).
- With `canaryTrafficPercent: 0` the previously rolled-out revision serves everything and
  the spec does not say which model that is; Vigil records it in the annotations
  `vigil.dev/model-version` (and `vigil.dev/storage-uri`, the storageUri it was written
  against, so a later change of the spec by someone else makes the record stale, not wrong).

Two ways back (KServe's documented ones): point the predictor at the stable model (patch
`storageUri`, dropping any `canaryTrafficPercent` so the new revision takes all traffic),
or, during a canary, set `canaryTrafficPercent: 0` to pin traffic to the previously
rolled-out revision. The canary way assumes that revision serves `to_version` (the last
version known good, which it normally is); KServe does not expose a revision's model.

Verification reads the object back: the spec, then the `Ready` condition and
`status.components.predictor` (revisions, traffic). `status.observedGeneration` cannot say
whether KServe has seen the change: KServe copies it from the Knative Service (its own
generation count, ahead of or behind the InferenceService's). So a storageUri change
records the predictor's latest created revision before it (`vigil.dev/replaced-revision`),
and the status counts only once a newer revision is there: right after the patch the
status still describes the old revision, Ready with all traffic.
"""
from __future__ import annotations

import re
import string
from dataclasses import dataclass
from typing import Any

from monitor.executors.base import ExecutorError, RollbackStep, Verification
from monitor.executors.config import KServeExecutorConfig
from monitor.executors.kube import KubeClient, ObjectRef, Patch, dig

GROUP, API_VERSION, PLURAL = "serving.kserve.io", "v1beta1", "inferenceservices"
VERSION_ANNOTATION = "vigil.dev/model-version"
URI_ANNOTATION = "vigil.dev/storage-uri"
REPLACED_ANNOTATION = "vigil.dev/replaced-revision"  # the latest created revision when storageUri was patched
# Where a v1beta1 predictor names its model: `model` (modelFormat), or the older framework
# form KServe still takes (`sklearn: {storageUri}`, ...). Exactly one of them is set.
PREDICTOR_KEYS = ("model", "sklearn", "xgboost", "lightgbm", "tensorflow", "pytorch", "triton", "onnx",
                  "huggingface", "pmml", "paddle")


def model_key(predictor: dict[str, Any]) -> str:
    """The predictor's implementation key (`model` when there is none yet)."""
    return next((k for k in PREDICTOR_KEYS if isinstance(predictor.get(k), dict)), "model")


class StorageUriTemplate:
    """`s3://models/{registry}/{version}` both ways: version -> URI, URI -> version."""

    def __init__(self, template: str) -> None:
        self.template = template

    def format(self, step: RollbackStep, version: str) -> str:
        return self.template.format(registry=step.registry_name, model=step.model, version=version)

    def version_of(self, uri: str, step: RollbackStep) -> str | None:
        """The version a URI names, or None when it does not follow the template."""
        pattern, seen = "", False
        for literal, field, _, _ in string.Formatter().parse(self.template):
            pattern += re.escape(literal)
            if field == "version":
                pattern += "(?P=version)" if seen else "(?P<version>[^/]+?)"
                seen = True
            elif field is not None:
                pattern += re.escape(step.registry_name if field == "registry" else step.model)
        m = re.fullmatch(pattern, uri)
        return m.group("version") if m else None


@dataclass(frozen=True)
class Served:
    """What the spec of the InferenceService says is served, and how that was found."""

    version: str | None
    uri: str | None
    canary: int | None  # spec.predictor.canaryTrafficPercent; None when unset
    how: str

    @property
    def canary_in_progress(self) -> bool:
        return self.canary is not None and 0 < self.canary < 100


class KServeExecutor:
    name = "kserve"

    def __init__(self, kube: KubeClient, cfg: KServeExecutorConfig) -> None:
        self.kube, self.cfg = kube, cfg
        self.ref = ObjectRef(GROUP, API_VERSION, PLURAL, cfg.namespace, cfg.name)
        self.template = StorageUriTemplate(cfg.storage_uri_template)

    def current(self, step: RollbackStep) -> str | None:
        return self.served(self.kube.get(self.ref), step).version

    def served(self, obj: dict[str, Any], step: RollbackStep) -> Served:
        predictor = dig(obj, "spec", "predictor") or {}
        key = model_key(predictor)
        uri = dig(predictor, key, "storageUri")
        canary = predictor.get("canaryTrafficPercent")
        canary = int(canary) if canary is not None else None
        if canary == 0:
            notes = dig(obj, "metadata", "annotations") or {}
            recorded = notes.get(VERSION_ANNOTATION)
            if recorded and notes.get(URI_ANNOTATION) == uri:
                return Served(str(recorded), uri, 0, f"canaryTrafficPercent 0: the previous revision, recorded as "
                                                     f"v{recorded}")
            return Served(None, uri, 0, "canaryTrafficPercent 0: the previous revision, whose model is not recorded")
        if not isinstance(uri, str):
            return Served(None, None, canary, f"spec.predictor.{key}.storageUri is not set")
        version = self.template.version_of(uri, step)
        if version is None:
            return Served(None, uri, canary, f"storageUri {uri} does not follow {self.template.template}")
        share = f", canary at {canary}%" if canary is not None and canary < 100 else ""
        return Served(version, uri, canary, f"storageUri {uri}{share}")

    def apply(self, step: RollbackStep) -> None:
        def make(obj: dict[str, Any]) -> Patch | None:
            now = self.served(obj, step)
            if now.version == step.to_version:
                return None  # already there: a second apply writes nothing
            if now.version != step.from_version:  # (None: not served from a version then, nor now)
                raise ExecutorError(False, f"{self.ref} now serves v{now.version} ({now.how}), not "
                                           f"v{step.from_version} as when the rollback was decided: someone else "
                                           f"changed it; left alone", reason="changed")
            return self._patch(obj, now, step)

        self.kube.patch_fresh(self.ref, make)

    def _patch(self, obj: dict[str, Any], now: Served, step: RollbackStep) -> Patch:
        rv = dig(obj, "metadata", "resourceVersion")
        use_canary = self.cfg.mode == "canary" or (self.cfg.mode == "auto" and now.canary_in_progress)
        if use_canary:
            if not now.canary_in_progress:
                raise ExecutorError(False, f"{self.ref} has no canary in progress (canaryTrafficPercent "
                                           f"{now.canary}): mode 'canary' can only pin traffic to the previous "
                                           f"revision during one; use mode 'storage_uri' or 'auto'", reason="invalid")
            # No new revision here (traffic moves back): verify reads the traffic split.
            notes = {VERSION_ANNOTATION: step.to_version, URI_ANNOTATION: now.uri, REPLACED_ANNOTATION: None}
            return {"metadata": {"resourceVersion": rv, "annotations": notes},
                    "spec": {"predictor": {"canaryTrafficPercent": 0}}}
        uri = self.template.format(step, step.to_version)
        replaced = dig(obj, "status", "components", "predictor", "latestCreatedRevision")
        notes = {VERSION_ANNOTATION: step.to_version, URI_ANNOTATION: uri, REPLACED_ANNOTATION: replaced}
        # canaryTrafficPercent: null removes it, so the new revision takes all traffic.
        # Where the URI is: a `model` beside a framework key would be two implementations.
        key = model_key(dig(obj, "spec", "predictor") or {})
        return {"metadata": {"resourceVersion": rv, "annotations": notes},
                "spec": {"predictor": {key: {"storageUri": uri}, "canaryTrafficPercent": None}}}

    def verify(self, step: RollbackStep) -> Verification:
        obj = self.kube.get(self.ref)
        now = self.served(obj, step)
        if now.version != step.to_version:
            return Verification(False, now.version, f"{self.ref} serves v{now.version} ({now.how}), "
                                                    f"expected v{step.to_version}")
        said = f"{self.ref} serves v{now.version} ({now.how})"
        status = obj.get("status") or {}
        replaced = (dig(obj, "metadata", "annotations") or {}).get(REPLACED_ANNOTATION)
        if replaced and dig(status, "components", "predictor", "latestCreatedRevision") == replaced:
            return Verification(True, now.version, f"{said}; KServe has not yet reconciled it: its latest revision "
                                                   f"is still {replaced}, from before the change", settled=False)
        return _judge_status(status, now, said)


def _judge_status(status: dict[str, Any], now: Served, said: str) -> Verification:
    """The spec is right and KServe has seen it: do readiness and traffic agree?"""
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
    if ready is not None and ready.get("status") == "False":
        return Verification(False, now.version, f"{said}, but Ready=False: {ready.get('reason', '')} "
                                                f"{ready.get('message', '')}".rstrip())
    if ready is None:  # no status written yet
        return Verification(True, now.version, f"{said}; KServe has not yet reconciled it: no Ready condition",
                            settled=False)
    predictor = dig(status, "components", "predictor") or {}
    created, ready_rev = predictor.get("latestCreatedRevision"), predictor.get("latestReadyRevision")
    if ready.get("status") != "True" or (created and ready_rev and created != ready_rev):
        return Verification(True, now.version, f"{said}; revision {created} is not ready yet", settled=False)
    traffic = predictor.get("traffic") or []
    latest = sum(int(t.get("percent") or 0) for t in traffic if t.get("latestRevision"))
    shares = ", ".join(f"{t.get('tag') or t.get('revisionName')} {t.get('percent', 0)}%" for t in traffic)
    want = 0 if now.canary == 0 else 100
    if traffic and latest != want:
        return Verification(False, now.version, f"{said}, but traffic is {shares}: expected {want}% on the latest "
                                                f"revision")
    return Verification(True, now.version, f"{said}; Ready" + (f"; traffic {shares}" if shares else ""))
