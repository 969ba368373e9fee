"""One reconcile of a canary Rollout stored in `FakeKubeApi`, as the Argo Rollouts controller
does it (rollout/canary.go, rollout/sync.go), for what the executor tests need:

- the new ReplicaSet is the Rollout's own one whose pod template (less its
  `rollouts-pod-template-hash` label) is `spec.template`; the fake creates none (a template
  no ReplicaSet runs is an AssertionError);
- a pod template change (a new `currentPodHash`) starts a new rollout: `abort` is removed,
  `promoteFull` reset to false, `pauseConditions` cleared, `currentStepIndex` back to 0.
  So a `promoteFull` written before the controller observed the undo is lost;
- the new ReplicaSet becomes stable at once when it already is (an undo to the stable
  one), when there is no stable one yet, or when `promoteFull` is set (then reset);
- otherwise an aborted rollout is Degraded, and the steps are walked: `setWeight` passes,
  `pause: {}` stops there (Paused, `CanaryPauseStep`); past the last step it is stable.
Timed pauses, analysis and traffic weights are not modelled.
"""
from __future__ import annotations

import copy
from typing import Any

from tests.fakes.kube_api import FakeKubeApi
from tests.fakes.kube_objects import ARGO

HASH_LABEL = "rollouts-pod-template-hash"


def _new_hash(kube: FakeKubeApi, rollout: dict[str, Any]) -> str:
    uid, wanted = rollout["metadata"]["uid"], rollout["spec"]["template"]
    with kube.lock:
        stored = [copy.deepcopy(s.obj) for s in kube.state.objects.values() if s.obj.get("kind") == "ReplicaSet"]
    for rs in stored:
        if not any(o.get("controller") and o.get("uid") == uid for o in rs["metadata"].get("ownerReferences", [])):
            continue
        template = rs["spec"]["template"]
        pod_hash = template["metadata"]["labels"].pop(HASH_LABEL, None)
        if template == wanted:
            return str(pod_hash)
    raise AssertionError("the fake Argo controller creates no ReplicaSets: seed one running spec.template")


def reconcile(kube: FakeKubeApi, name: str = "recommender") -> dict[str, Any]:
    """Observe the Rollout's current generation and write its status; returns that status."""
    rollout = kube.get_object(*ARGO, name)
    status = {k: v for k, v in (rollout.get("status") or {}).items() if k != "observedGeneration"}
    steps = ((rollout["spec"].get("strategy") or {}).get("canary") or {}).get("steps") or []
    new = _new_hash(kube, rollout)
    if status.get("currentPodHash") != new:  # a new pod template: a new rollout
        for key in ("abort", "pauseConditions", "message"):
            status.pop(key, None)
        status.update(currentPodHash=new, promoteFull=False, currentStepIndex=0)
    if new == status.get("stableRS") or not status.get("stableRS") or status.get("promoteFull"):
        _stable(status, new, len(steps))
    elif status.get("abort"):
        status.update(phase="Degraded", message="RolloutAborted: Rollout aborted update to revision")
    else:
        at = int(status.get("currentStepIndex") or 0)
        while at < len(steps) and steps[at].get("pause") != {}:
            at += 1
        if at == len(steps):
            _stable(status, new, len(steps))
        else:
            status.update(phase="Paused", message="CanaryPauseStep", currentStepIndex=at,
                          pauseConditions=[{"reason": "CanaryPauseStep"}])
    kube.controller_status(*ARGO, name, status)
    return status


def _stable(status: dict[str, Any], new: str, steps: int) -> None:
    for key in ("pauseConditions", "message", "abort"):
        status.pop(key, None)
    status.update(stableRS=new, currentStepIndex=steps, phase="Healthy", promoteFull=False)
