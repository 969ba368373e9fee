"""`argo_rollouts`: an Argo Rollouts `Rollout` (argoproj.io/v1alpha1): abort, then undo.

The version a pod template runs is its label `version_label` (or, failing that, its
annotation of that name), e.g. `model-version: "2"`. The Rollout's `spec.template` is the
version it is rolling out or has rolled out; that is what `current()` reports.

A rollback does what the kubectl plugin does:
1. abort (`kubectl argo rollouts abort`): merge-patch `{"status":{"abort":true}}` on the
   status subresource (the main resource for CRDs installed without one), which sends
   traffic back to the stable ReplicaSet at once;
2. undo (`kubectl argo rollouts undo`): find the Rollout's own ReplicaSet (selector
   `spec.selector`, controller owner reference) whose pod template runs `to_version`, the
   newest by `rollout.argoproj.io/revision` if several, and JSON-patch
   `replace /spec/template` with that template less its `rollouts-pod-template-hash` label.
Both patches carry the `resourceVersion` they were computed from (see kube.py).

Verification reads back `spec.template`, then, once the controller has observed the new
generation, the ReplicaSet named by `status.currentPodHash` and `status.phase`. An undo to
a ReplicaSet other than the stable one (the bad version was fully promoted) is a new
rollout to Argo: it walks the canary steps unless `spec.rollbackWindow` covers it, and a
`pause: {}` holds it there. With `promote_full` (the default) the read-back then finishes it
as `kubectl argo rollouts promote --full` does, once the controller has observed the undo;
a crash between the undo and that is finished by the next read-back, with no second undo.
Without, verification says where it stopped and how to finish it.
"""
from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from monitor.executors.base import ExecutorError, RollbackStep, Verification
from monitor.executors.config import ArgoRolloutsExecutorConfig
from monitor.executors.kube import KubeClient, ObjectRef, Patch, dig, reconciled

GROUP, API_VERSION, PLURAL = "argoproj.io", "v1alpha1", "rollouts"
REVISION_ANNOTATION = "rollout.argoproj.io/revision"
HASH_LABEL = "rollouts-pod-template-hash"


def label_selector(selector: dict[str, Any]) -> str:
    """A LabelSelector (matchLabels, matchExpressions) as the `labelSelector` query string."""
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for e in selector.get("matchExpressions") or []:
        key, op, values = e["key"], e["operator"], ",".join(e.get("values") or [])
        parts.append({"In": f"{key} in ({values})", "NotIn": f"{key} notin ({values})", "Exists": key,
                      "DoesNotExist": f"!{key}"}[op])
    return ",".join(parts)


class ArgoRolloutsExecutor:
    name = "argo_rollouts"

    def __init__(self, kube: KubeClient, cfg: ArgoRolloutsExecutorConfig) -> None:
        self.kube, self.cfg = kube, cfg
        self.ref = ObjectRef(GROUP, API_VERSION, PLURAL, cfg.namespace, cfg.name)

    def version_of(self, template: Any) -> str | None:
        for where in ("labels", "annotations"):
            value = dig(template, "metadata", where, self.cfg.version_label)
            if value is not None:
                return str(value)
        return None

    def template(self, rollout: dict[str, Any]) -> Any:
        """The Rollout's `spec.template`. One that takes its template from another workload
        (`spec.workloadRef`) has none: said so, rather than read as version None, which
        looked like someone else's deploy."""
        template = dig(rollout, "spec", "template")
        ref = dig(rollout, "spec", "workloadRef")
        if template is None and isinstance(ref, dict):
            raise ExecutorError(False, f"{self.ref} takes its pod template from {ref.get('kind', 'a workload')} "
                                       f"{ref.get('name', '?')} (spec.workloadRef): the argo_rollouts executor reads "
                                       "and rolls back a Rollout's own spec.template; roll that workload back instead "
                                       "(for example through a `webhook` serving layer)", reason="invalid")
        return template

    def current(self, step: RollbackStep) -> str | None:
        return self.version_of(self.template(self.kube.get(self.ref)))

    def apply(self, step: RollbackStep) -> None:
        rollout = self.kube.get(self.ref)
        if not self._still_to_move(rollout, step):
            return  # already there: a second apply writes nothing
        # The target template is found before anything changes: no abort without a way back.
        target = self._replica_set_for(rollout, step.to_version)
        template = copy.deepcopy(dig(target, "spec", "template") or {})
        (dig(template, "metadata", "labels") or {}).pop(HASH_LABEL, None)
        self._abort(step)

        def make_undo(obj: dict[str, Any]) -> Patch | None:
            if not self._still_to_move(obj, step):
                return None
            rv = dig(obj, "metadata", "resourceVersion")
            return [{"op": "replace", "path": "/metadata/resourceVersion", "value": rv},
                    {"op": "replace", "path": "/spec/template", "value": template}]

        self.kube.patch_fresh(self.ref, make_undo)

    def _still_to_move(self, obj: dict[str, Any], step: RollbackStep) -> bool:
        """False when already at to_version; raises when someone else moved it elsewhere."""
        now = self.version_of(self.template(obj))
        if now == step.to_version:
            return False
        if now != step.from_version:
            raise ExecutorError(False, f"{self.ref} now rolls out v{now}, not v{step.from_version} as when the "
                                       f"rollback was decided: someone else changed it; left alone", reason="changed")
        return True

    def _abort(self, step: RollbackStep) -> None:
        def make_abort(obj: dict[str, Any]) -> Patch | None:
            if not self._still_to_move(obj, step) or dig(obj, "status", "abort") is True:
                return None
            return {"metadata": {"resourceVersion": dig(obj, "metadata", "resourceVersion")},
                    "status": {"abort": True}}

        self._patch_status(make_abort)

    def _patch_status(self, make: Callable[[dict[str, Any]], Patch | None]) -> bool:
        """Patch the status subresource; whether it wrote."""
        try:
            return self.kube.patch_fresh(self.ref, make, subresource="status")[1]
        except ExecutorError as e:
            if e.reason != "not_found":
                raise
            # A Rollout CRD installed without the status subresource: status is written on
            # the main resource then; a Rollout that is really gone fails the same way there.
            return self.kube.patch_fresh(self.ref, make)[1]

    def _promote_full(self, step: RollbackStep, target_hash: str) -> bool:
        """`kubectl argo rollouts promote --full`: status.promoteFull, only while the controller
        has observed the undo (it resets promoteFull on a new pod template, so one set earlier
        is lost) and still runs it as a canary of the target's ReplicaSet. The patch carries
        the resourceVersion it was decided on: a deploy in between is a 409 and a fresh look."""
        def make_promote(obj: dict[str, Any]) -> Patch | None:
            status = obj.get("status") or {}
            if (self.version_of(self.template(obj)) != step.to_version or not reconciled(obj)
                    or status.get("currentPodHash") != target_hash or status.get("stableRS") == target_hash
                    or status.get("promoteFull") is True):
                return None
            return {"metadata": {"resourceVersion": dig(obj, "metadata", "resourceVersion")},
                    "status": {"promoteFull": True}}

        return self._patch_status(make_promote)

    def _owned_replica_sets(self, rollout: dict[str, Any]) -> list[dict[str, Any]]:
        uid = dig(rollout, "metadata", "uid")
        selector = label_selector(dig(rollout, "spec", "selector") or {})
        return [rs for rs in self.kube.list_replica_sets(self.cfg.namespace, selector)
                if any(o.get("controller") and o.get("uid") == uid for o in dig(rs, "metadata", "ownerReferences")
                       or [])]

    def _replica_set_for(self, rollout: dict[str, Any], version: str) -> dict[str, Any]:
        owned = self._owned_replica_sets(rollout)
        matching = [rs for rs in owned if self.version_of(dig(rs, "spec", "template")) == version]
        if not matching:
            seen = sorted({v for rs in owned if (v := self.version_of(dig(rs, "spec", "template")))})
            raise ExecutorError(False, f"{self.ref}: no ReplicaSet of this Rollout has pod template "
                                       f"{self.cfg.version_label}={version} (its ReplicaSets run "
                                       f"{', '.join(seen) or 'no labelled version'}); Argo keeps "
                                       f"spec.revisionHistoryLimit old ones (default 10)", reason="not_found")
        return max(matching, key=_revision)

    def verify(self, step: RollbackStep) -> Verification:
        rollout = self.kube.get(self.ref)
        spec_version = self.version_of(self.template(rollout))
        where = f"{self.ref} spec.template has {self.cfg.version_label}={spec_version}"
        if spec_version != step.to_version:
            return Verification(False, spec_version, f"{where}, expected {step.to_version}")
        if not reconciled(rollout):
            return Verification(True, spec_version, f"{where}; the controller has not yet observed generation "
                                                    f"{dig(rollout, 'metadata', 'generation')}", settled=False)
        status = rollout.get("status") or {}
        pod_hash, owned = status.get("currentPodHash"), self._owned_replica_sets(rollout)
        running = self._version_at(owned, pod_hash)
        if pod_hash and running != step.to_version:
            return Verification(False, running, f"{where}, but the controller's current ReplicaSet "
                                                f"(hash {pod_hash}) runs {running}")
        phase, message = status.get("phase"), status.get("message", "")
        if phase == "Degraded":
            return Verification(False, spec_version, f"{where}, but the Rollout is Degraded: {message}")
        stable = status.get("stableRS")
        if stable and pod_hash and stable != pod_hash and self.cfg.promote_full:
            return Verification(True, spec_version, f"{where}; {self._finish(rollout, step, pod_hash, stable)}",
                                settled=False)
        if phase == "Paused" and stable and stable != pod_hash:
            return Verification(True, spec_version, f"{where}; {self._paused(rollout, owned, stable)}", settled=False)
        if phase != "Healthy":
            return Verification(True, spec_version, f"{where}; phase {phase}", settled=False)
        return Verification(True, spec_version, f"{where}; Healthy on ReplicaSet hash {pod_hash}")


    def _finish(self, rollout: dict[str, Any], step: RollbackStep, pod_hash: str, stable: str) -> str:
        """The undo, observed, runs as a canary of the target (the bad version was fully
        promoted): promoted fully, so that no canary step holds traffic on the bad version."""
        running = (f"Argo runs the undo as a new rollout through the canary steps (phase "
                   f"{dig(rollout, 'status', 'phase')}, step {dig(rollout, 'status', 'currentStepIndex')})")
        if dig(rollout, "status", "promoteFull") is True or self._promote_full(step, pod_hash):
            return (f"{running}; asked it to promote the rollback fully (status.promoteFull, as `kubectl argo "
                    f"rollouts promote --full` does): waiting for ReplicaSet hash {pod_hash} to replace the "
                    f"stable one (hash {stable})")
        return f"{running}; the Rollout changed while Vigil promoted it fully: looked at again next time"

    def _version_at(self, owned: list[dict[str, Any]], pod_hash: str | None) -> str | None:
        return next((self.version_of(dig(rs, "spec", "template")) for rs in owned
                     if dig(rs, "metadata", "labels", HASH_LABEL) == pod_hash), None)

    def _paused(self, rollout: dict[str, Any], owned: list[dict[str, Any]], stable: str) -> str:
        """Argo takes an undo to a ReplicaSet other than the stable one as a new rollout: it
        walks the canary steps (unless spec.rollbackWindow covers it), so a `pause: {}`
        holds traffic on the version rolled back from until someone promotes it."""
        steps = dig(rollout, "spec", "strategy", "canary", "steps") or []
        at = dig(rollout, "status", "currentStepIndex")
        return (f"Paused at canary step {at} of {len(steps)}: Argo runs the undo as a new rollout through the "
                f"canary steps, and the stable ReplicaSet (hash {stable}) still runs "
                f"{self._version_at(owned, stable)} with the traffic the steps have not moved yet; finish it "
                f"with `kubectl argo rollouts promote --full {self.cfg.name} -n {self.cfg.namespace}`, or set "
                f"spec.rollbackWindow so that rollbacks skip the steps")


def _revision(rs: dict[str, Any]) -> int:
    try:
        return int(dig(rs, "metadata", "annotations", REVISION_ANNOTATION) or 0)
    except ValueError:
        return 0
