"""Every object under deploy/kubernetes/ against the Kubernetes API's own schema, as the
official client's models carry it: each field a field of its kind (a misspelt
`periodSecond` or `readOnlyRootFileSystem` is dropped by a lenient apply, and the pod runs
without it), each value of its type. Prometheus Operator kinds are not in the client."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client import models

KDIR = Path(__file__).resolve().parents[3] / "deploy" / "kubernetes"
MODELS = {"Deployment": "V1Deployment", "Service": "V1Service", "ConfigMap": "V1ConfigMap", "Job": "V1Job",
          "ServiceAccount": "V1ServiceAccount", "PodDisruptionBudget": "V1PodDisruptionBudget",
          "Secret": "V1Secret", "Role": "V1Role", "RoleBinding": "V1RoleBinding"}
SCALARS: dict[str, Any] = {"str": str, "int": int, "bool": bool, "float": (int, float), "datetime": str, "bytes": str}
QUANTITIES = ("limits", "requests")  # `cpu: 2` is a quantity as much as `cpu: "2"`


def schema_errors(data: Any, klass: str, where: str) -> list[str]:
    """What the API server would refuse or drop in `data`, read as the client's `klass`."""
    if klass.startswith("List["):
        if not isinstance(data, list):
            return [f"{where}: expected a list"]
        return [e for i, d in enumerate(data) for e in schema_errors(d, klass[5:-1], f"{where}[{i}]")]
    if klass.startswith("Dict["):
        if not isinstance(data, dict):
            return [f"{where}: expected a mapping"]
        inner = klass[5:-1].split(", ", 1)[1]
        inner = "object" if inner == "str" and where.rsplit(".", 1)[-1] in QUANTITIES else inner
        return [e for k, v in data.items() for e in schema_errors(v, inner, f"{where}.{k}")]
    if klass == "object":  # int-or-string, free-form
        return []
    if klass in SCALARS:
        ok = isinstance(data, SCALARS[klass]) and not (klass in ("int", "float") and isinstance(data, bool))
        return [] if ok else [f"{where}: expected {klass}, got {data!r}"]
    model = getattr(models, klass)
    if not isinstance(data, dict):
        return [f"{where}: expected a {klass} mapping"]
    field_of = {v: k for k, v in model.attribute_map.items()}
    errors = [f"{where}.{k}: not a field of {klass}" for k in data if k not in field_of]
    return errors + [e for k, v in data.items() if k in field_of
                     for e in schema_errors(v, model.openapi_types[field_of[k]], f"{where}.{k}")]


def _documents() -> list[tuple[str, dict[str, Any]]]:
    return [(f"{p.name} {d['kind']}", d) for p in sorted(KDIR.glob("*.yaml"))
            for d in yaml.safe_load_all(p.read_text()) if d and d.get("kind") in MODELS]


@pytest.mark.parametrize(("name", "doc"), _documents(), ids=[n for n, _ in _documents()])
def test_each_object_follows_the_kubernetes_schema(name: str, doc: dict[str, Any]) -> None:
    assert schema_errors(doc, MODELS[doc["kind"]], doc["kind"]) == []


def test_every_kubernetes_kind_here_is_checked() -> None:
    kinds = {d["kind"] for p in KDIR.glob("*.yaml") for d in yaml.safe_load_all(p.read_text()) if d}
    assert kinds - set(MODELS) == {"PrometheusRule", "ServiceMonitor", "Kustomization"}


def test_a_misspelt_field_and_a_quoted_boolean_are_caught() -> None:
    doc = yaml.safe_load((KDIR / "deployment.yaml").read_text())
    [c] = doc["spec"]["template"]["spec"]["containers"]
    c["livenessProbe"]["periodSecond"] = c["livenessProbe"].pop("periodSeconds")
    c["securityContext"]["readOnlyRootFilesystem"] = "true"
    assert schema_errors(doc, "V1Deployment", "Deployment") == [
        "Deployment.spec.template.spec.containers[0].livenessProbe.periodSecond: not a field of V1Probe",
        "Deployment.spec.template.spec.containers[0].securityContext.readOnlyRootFilesystem: expected bool, "
        "got 'true'"]


def test_the_migration_job_runs_the_image_the_rollout_deploys() -> None:
    """`vigil db upgrade` of another version than the replicas' would leave the store behind
    (they refuse to start) or ahead of them."""
    [image] = yaml.safe_load((KDIR / "kustomization.yaml").read_text())["images"]
    job = yaml.safe_load((KDIR / "migrate-job.yaml").read_text())
    [c] = job["spec"]["template"]["spec"]["containers"]
    assert c["image"] == f"{image['newName']}:{image['newTag']}"
