"""deploy/kubernetes/rbac.example.yaml against what the rollback executors really ask of the
Kubernetes API: the kserve and argo_rollouts layers run whole rollbacks (apply, then read
back until settled) against the local API server, and every request they made must be one
the Role allows (RBAC's own matching: verb, API group, resource or resource/subresource,
resourceNames), and every verb the Role grants must be one they used: least privilege."""
from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.executors.argo import ArgoRolloutsExecutor
from monitor.executors.base import RollbackStep
from monitor.executors.config import ArgoRolloutsExecutorConfig, KServeExecutorConfig
from monitor.executors.kserve import KServeExecutor
from monitor.executors.kube import KubeClient, api_client_at
from tests.fakes.argo_controller import reconcile
from tests.fakes.kube_api import FakeKubeApi
from tests.fakes.kube_objects import KSERVE, NS, inference_service, kserve_status, replica_set, rollout

ROOT = Path(__file__).resolve().parents[3]
KDIR = ROOT / "deploy" / "kubernetes"
STEP = RollbackStep(model="recommender", registry_name="recommender", from_version="2", to_version="1",
                    key="rollback:incident:7")
_PATH = re.compile(r"^/apis/(?P<group>[^/]+)/[^/]+/namespaces/(?P<ns>[^/]+)/(?P<plural>[^/]+)"
                   r"(?:/(?P<name>[^/]+))?(?:/(?P<sub>[^/]+))?$")
Request = tuple[str, str, str, str, str]  # verb, namespace, group, resource[/subresource], name


@pytest.fixture
def kube() -> Iterator[FakeKubeApi]:
    with FakeKubeApi() as server:
        yield server


def _client(kube: FakeKubeApi) -> KubeClient:
    return KubeClient(api_client_at(kube.url), timeout_s=2.0, max_attempts=1, backoff_s=0.01)


def _objects() -> dict[str, dict[str, Any]]:
    return {d["kind"]: d for d in yaml.safe_load_all((KDIR / "rbac.example.yaml").read_text()) if d}


def _as_rbac(kube: FakeKubeApi) -> list[Request]:
    """Each request as the API server's authorizer sees it."""
    out = []
    for r in kube.requests:
        m = _PATH.match(r.path)
        assert m, r.path
        name = m["name"] or ""
        verb = {"GET": "get" if name else "list", "PATCH": "patch", "PUT": "update"}[r.method]
        resource = m["plural"] + (f"/{m['sub']}" if m["sub"] else "")
        out.append((verb, m["ns"], m["group"], resource, name))
    return out


def _allows(role: dict[str, Any], req: Request) -> bool:
    verb, ns, group, resource, name = req
    if role["metadata"]["namespace"] != ns:
        return False
    return any(verb in rule["verbs"] and group in rule["apiGroups"] and resource in rule["resources"]
               and (not rule.get("resourceNames") or name in rule["resourceNames"]) for rule in role["rules"])


def _kserve_rollbacks(kube: FakeKubeApi) -> None:
    """A storageUri rollback read back to Ready, then a canary pinned to 0."""
    kube.put_object(inference_service(uri="s3://models/recommender/2"))
    cfg = KServeExecutorConfig(kind="kserve", namespace=NS, name="recommender", in_cluster=False,
                               storage_uri_template="s3://models/{registry}/{version}")
    ex = KServeExecutor(_client(kube), cfg)
    ex.current(STEP)
    ex.apply(STEP)
    kube.controller_status(*KSERVE, "recommender", kserve_status(created="r-3", ready_rev="r-3",
                                                                 traffic=[("latest", 100, True)]))
    assert ex.verify(STEP).settled
    kube.put_object(inference_service(uri="s3://models/recommender/2", canary=10))
    ex.apply(STEP)


def _argo_rollback(kube: FakeKubeApi) -> None:
    """A fully promoted v2 rolled back to v1: abort, undo, then promote --full, read back to Healthy."""
    kube.put_object(rollout(version="2"))
    kube.put_object(replica_set("1", 1, "aaa111"))
    kube.put_object(replica_set("2", 2, "bbb222"))
    reconcile(kube)
    cfg = ArgoRolloutsExecutorConfig(kind="argo_rollouts", namespace=NS, name="recommender")
    ex = ArgoRolloutsExecutor(_client(kube), cfg)
    ex.current(STEP)
    ex.apply(STEP)
    for _ in range(3):
        reconcile(kube)
        if ex.verify(STEP).settled:
            break
    assert ex.verify(STEP).settled, "the rollback did not finish: the test no longer covers every request"


def test_the_role_allows_every_request_of_a_rollback_and_grants_nothing_else(kube: FakeKubeApi) -> None:
    role = _objects()["Role"]
    _kserve_rollbacks(kube)
    _argo_rollback(kube)
    made = _as_rbac(kube)
    refused = sorted({r for r in made if not _allows(role, r)})
    assert not refused, f"the Role in rbac.example.yaml would refuse (verb, namespace, group, resource, name): " \
                        f"{refused}"
    for rule in role["rules"]:
        for verb in rule["verbs"]:
            assert any(r[0] == verb and r[2] in rule["apiGroups"] and r[3] in rule["resources"] for r in made), \
                f"the Role grants {verb} on {rule['resources']} in {rule['apiGroups']}, which no executor uses"
    assert ("list", NS, "apps", "replicasets", "") in made and ("patch", NS, "argoproj.io", "rollouts/status",
                                                                 "recommender") in made


def test_the_binding_names_the_role_and_the_deployments_service_account() -> None:
    objs = _objects()
    role, binding = objs["Role"], objs["RoleBinding"]
    assert binding["metadata"]["namespace"] == role["metadata"]["namespace"]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": role["metadata"]["name"]}
    deployment = yaml.safe_load((KDIR / "deployment.yaml").read_text())
    namespace = yaml.safe_load((KDIR / "kustomization.yaml").read_text())["namespace"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "namespace": namespace,
                                    "name": deployment["spec"]["template"]["spec"]["serviceAccountName"]}]
    assert "rbac.example.yaml" not in (KDIR / "kustomization.yaml").read_text()  # another namespace
