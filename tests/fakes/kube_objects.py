"""Sample objects for the fake Kubernetes API: an InferenceService, a Rollout and its
ReplicaSets, shaped as the KServe and Argo Rollouts controllers write them."""
from __future__ import annotations

from typing import Any

NS = "ml"
KSERVE = ("serving.kserve.io", "v1beta1", NS, "inferenceservices")
ARGO = ("argoproj.io", "v1alpha1", NS, "rollouts")
ROLLOUT_UID = "5b7f1c9e-0000-4000-8000-00000000r011"


def inference_service(name: str = "recommender", *, uri: str = "s3://models/recommender/2",
                      canary: int | None = None, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    predictor: dict[str, Any] = {"model": {"modelFormat": {"name": "sklearn"}, "storageUri": uri}}
    if canary is not None:
        predictor["canaryTrafficPercent"] = canary
    return {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
            "metadata": {"name": name, "namespace": NS, "annotations": dict(annotations or {})},
            "spec": {"predictor": predictor}}


def kserve_status(*, ready: str = "True", traffic: list[tuple[str, int, bool]] = (), created: str = "r-2",
                  ready_rev: str = "r-2") -> dict[str, Any]:
    """traffic: (tag, percent, latestRevision) per target."""
    return {"conditions": [{"type": "Ready", "status": ready, "reason": "" if ready == "True" else "RevisionFailed",
                            "message": "" if ready == "True" else "model failed to load"}],
            "components": {"predictor": {
                "latestCreatedRevision": created, "latestReadyRevision": ready_rev,
                "traffic": [{"tag": tag, "revisionName": f"recommender-predictor-{tag}", "percent": pct,
                             "latestRevision": latest} for tag, pct, latest in traffic]}}}


def pod_template(version: str, *, pod_hash: str | None = None, image: str = "registry.local/recsys:1.4") -> dict:
    labels = {"app": "recommender", "model-version": version}
    if pod_hash:
        labels["rollouts-pod-template-hash"] = pod_hash
    return {"metadata": {"labels": labels, "annotations": {"prometheus.io/scrape": "true"}},
            "spec": {"containers": [{"name": "server", "image": image,
                                     "env": [{"name": "MODEL_URI", "value": f"models:/recommender/{version}"}],
                                     "resources": {"limits": {"nvidia.com/gpu": "1"}}}]}}


def rollout(name: str = "recommender", *, version: str = "2", uid: str = ROLLOUT_UID) -> dict[str, Any]:
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": name, "namespace": NS, "uid": uid},
            "spec": {"replicas": 4, "selector": {"matchLabels": {"app": "recommender"}},
                     "template": pod_template(version),
                     "strategy": {"canary": {"steps": [{"setWeight": 20}, {"pause": {}}]}}}}


def replica_set(version: str, revision: int, pod_hash: str, *, owner_uid: str = ROLLOUT_UID,
                name: str = "recommender") -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": f"{name}-{pod_hash}", "namespace": NS,
                         "labels": {"app": "recommender", "rollouts-pod-template-hash": pod_hash},
                         "annotations": {"rollout.argoproj.io/revision": str(revision)},
                         "ownerReferences": [{"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": name,
                                              "uid": owner_uid, "controller": True, "blockOwnerDeletion": True}]},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "recommender",
                                                                 "rollouts-pod-template-hash": pod_hash}},
                     "template": pod_template(version, pod_hash=pod_hash)}}
