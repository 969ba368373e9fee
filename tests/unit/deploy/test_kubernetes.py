"""deploy/kubernetes/ rendered as `kubectl apply -k` would send it: every object valid
YAML with its required fields, two or more replicas sharing PostgreSQL through Secret
references, probes on /readyz and /healthz, resources, a non-root read-only container,
a PodDisruptionBudget, a ServiceMonitor that finds the Service, the alerting rules, and a
ConfigMap that is a valid vigil.yaml."""
from __future__ import annotations

import math
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.utils import parse_quantity

from monitor.config import parse_config
from monitor.daemon import SWEEP_WORKERS_EXIT_S
from monitor.http_server import API_STOP_TIMEOUT_S
from monitor.sources.spool import RESCAN_FRACTION

ROOT = Path(__file__).resolve().parents[3]
KDIR = ROOT / "deploy" / "kubernetes"
RULES = ROOT / "dashboards" / "vigil-alerts.rules.yml"


def _render() -> list[dict[str, Any]]:
    """`kubectl kustomize` when kubectl is here (what `apply -k` sends), else the listed files."""
    if shutil.which("kubectl"):
        out = subprocess.run(["kubectl", "kustomize", str(KDIR)], capture_output=True, text=True, check=True,
                             timeout=60).stdout
        return [d for d in yaml.safe_load_all(out) if d]
    listed = yaml.safe_load((KDIR / "kustomization.yaml").read_text())["resources"]
    return [d for f in listed for d in yaml.safe_load_all((KDIR / f).read_text()) if d]


@pytest.fixture(scope="module")
def objects() -> dict[str, dict[str, Any]]:
    docs = _render()
    for d in docs:
        assert {"apiVersion", "kind", "metadata"} <= set(d), d
        assert d["metadata"].get("name"), d
    by_kind = {d["kind"]: d for d in docs}
    assert len(by_kind) == len(docs), "one object of each kind"
    return by_kind


def test_every_kind_an_operator_needs_is_rendered(objects):
    assert set(objects) == {"ConfigMap", "ServiceAccount", "Deployment", "Service", "PodDisruptionBudget",
                            "ServiceMonitor", "PrometheusRule"}
    assert all(o["metadata"]["namespace"] == "vigil" for o in objects.values())


def test_the_deployment_runs_two_replicas_on_postgres_with_probes_resources_and_no_root(objects):
    dep = objects["Deployment"]
    assert dep["spec"]["replicas"] >= 2
    assert dep["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pod = dep["spec"]["template"]["spec"]
    assert dep["spec"]["selector"]["matchLabels"].items() <= dep["spec"]["template"]["metadata"]["labels"].items()
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    [c] = pod["containers"]
    assert c["image"] == "registry.example.com/vigil:0.1.0"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert {"cpu", "memory"} <= set(c["resources"]["requests"]) and {"cpu", "memory"} <= set(c["resources"]["limits"])
    sc = c["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"]["drop"] == ["ALL"]
    # Secrets only by reference: the store URL (with its password) and the tokens come from the Secret.
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in c["env"] if "valueFrom" in e}
    assert refs["VIGIL_STORE_URL"] == {"name": "vigil-secrets", "key": "store-url"}
    assert {"SLACK_BOT_TOKEN", "VIGIL_AUDIT_KEY"} <= set(refs)
    assert not [e for e in c["env"] if "value" in e and "TOKEN" in e["name"]]
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    assert mounts["/etc/vigil"]["readOnly"] and mounts["/run/secrets/vigil"]["readOnly"]


def test_the_service_monitor_and_pdb_select_the_deployment_pods(objects):
    pod_labels = objects["Deployment"]["spec"]["template"]["metadata"]["labels"]
    svc = objects["Service"]
    assert svc["spec"]["selector"].items() <= pod_labels.items()
    assert objects["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert objects["PodDisruptionBudget"]["spec"]["minAvailable"] >= 1
    sm = objects["ServiceMonitor"]["spec"]
    assert sm["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    [endpoint] = sm["endpoints"]
    assert endpoint["path"] == "/metrics" and endpoint["port"] in {p["name"] for p in svc["spec"]["ports"]}


def test_the_configmap_is_a_valid_config_once_its_secrets_are_set(objects, monkeypatch):
    for name in ("VIGIL_STORE_URL", "SLACK_BOT_TOKEN", "VIGIL_AUDIT_KEY"):
        monkeypatch.setenv(name, "postgresql+psycopg://vigil:pw@db:5432/vigil" if name == "VIGIL_STORE_URL"
                           else "xoxb-1-2" if name == "SLACK_BOT_TOKEN" else "ab" * 32)
    cfg = parse_config(yaml.safe_load(objects["ConfigMap"]["data"]["vigil.yaml"]), "configmap vigil.yaml", "/etc/vigil")
    assert cfg.store.url.startswith("postgresql+psycopg://")  # several replicas need PostgreSQL
    assert cfg.api.host == "0.0.0.0" and cfg.api.port == 8080
    pod = objects["Deployment"]["spec"]["template"]["spec"]
    assert {"containerPort": 8080, "name": "http", "protocol": "TCP"} in pod["containers"][0]["ports"]


def test_the_prometheus_rule_carries_vigils_own_alerting_rules(objects):
    if not RULES.exists():
        pytest.skip("dashboards/vigil-alerts.rules.yml is not in this tree yet")
    groups = yaml.safe_load(RULES.read_text())["groups"]
    assert objects["PrometheusRule"]["spec"]["groups"] == groups, \
        "stale: run `python deploy/kubernetes/make_prometheusrule.py`"


def test_the_migration_job_runs_vigil_db_upgrade_as_non_root():
    job = yaml.safe_load((KDIR / "migrate-job.yaml").read_text())
    assert job["kind"] == "Job"
    pod = job["spec"]["template"]["spec"]
    [c] = pod["containers"]
    assert c["args"][:2] == ["db", "upgrade"] and pod["restartPolicy"] == "Never"
    assert pod["securityContext"]["runAsNonRoot"] is True and c["resources"]["limits"]


def test_the_pod_is_given_the_whole_shutdown_grace_and_the_apis_stop(objects, monkeypatch):
    """SIGTERM lets running cycles finish and drains the outbox within schedule.shutdown_grace
    (read from the ConfigMap, not assumed), the API's stop takes up to API_STOP_TIMEOUT_S
    plus a tick, and sweep workers up to SWEEP_WORKERS_EXIT_S: raising the grace in the
    ConfigMap alone would have the kubelet SIGKILL a replica mid-drain."""
    for name in ("VIGIL_STORE_URL", "SLACK_BOT_TOKEN", "VIGIL_AUDIT_KEY"):
        monkeypatch.setenv(name, "postgresql+psycopg://v:pw@db/v" if name == "VIGIL_STORE_URL" else "ab" * 32)
    cfg = parse_config(yaml.safe_load(objects["ConfigMap"]["data"]["vigil.yaml"]), "configmap", "/etc/vigil")
    pod = objects["Deployment"]["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] >= (prestop_sleep(pod["containers"][0]) + cfg.schedule.shutdown_grace
                                                    + API_STOP_TIMEOUT_S + 1 + SWEEP_WORKERS_EXIT_S)


def prestop_sleep(container: dict[str, Any]) -> int:
    """Seconds the container's preStop hook sleeps before the kubelet sends SIGTERM (0: none)."""
    hook = container.get("lifecycle", {}).get("preStop")
    if hook is None:
        return 0
    if "sleep" in hook:
        return int(hook["sleep"]["seconds"])
    command = hook["exec"]["command"]
    assert command[0] == "sleep" and len(command) == 2, f"a preStop hook that only sleeps, not {command}"
    return int(command[1])


def test_a_replica_being_replaced_still_answers_while_the_service_stops_routing_to_it(objects):
    """On a rolling update the pod leaves the Service's endpoints when it is deleted, but
    kube-proxy and ingress controllers apply that seconds later: a SIGTERM at once would
    stop the API (once its cycles end) while an on-call's rollback is still routed to it,
    and that call would be refused. The preStop sleep keeps it serving through that."""
    [c] = objects["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert prestop_sleep(c) >= 5


def test_every_file_vigil_writes_is_on_a_writable_volume(objects, monkeypatch):
    """The root file system is read-only and so are the config and secret mounts: a path the
    ConfigMap's vigil.yaml writes to (resolved as Vigil does, against /etc/vigil) must be on
    a writable volume, or each write fails (the sink with ${SLACK_BOT_TOKEN} left empty)."""
    for name in ("VIGIL_STORE_URL", "SLACK_BOT_TOKEN", "VIGIL_AUDIT_KEY"):
        monkeypatch.setenv(name, "postgresql+psycopg://v:pw@db/v" if name == "VIGIL_STORE_URL" else "ab" * 32)
    cfg = parse_config(yaml.safe_load(objects["ConfigMap"]["data"]["vigil.yaml"]), "configmap", "/etc/vigil")
    [c] = objects["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    writable = [m["mountPath"] for m in c["volumeMounts"] if not m.get("readOnly")]
    written = {"spool.directory": Path(cfg.spool.directory or "/tmp"),
               "slack.sink_path": cfg.resolve_path(cfg.slack.sink_path)}
    for field, path in written.items():
        assert any(path.is_relative_to(w) for w in writable), f"{field} {path} is on none of {writable}"


SPOOL_BYTES_PER_MODEL = 5 * 10**6  # README, The spool: a sample window and a training profile, 50 features
SIZED_FOR_MODELS = 1000  # what the Deployment's requests are sized for (its comment)


def test_the_spool_fits_its_volume_and_the_pod_asks_for_the_disk_it_fills(objects, monkeypatch):
    """The spool (about 5 GB at 1,000 models) is written to an emptyDir: unsized, the node's
    disk fills or the kubelet evicts the pod for disk it never asked for. Its volume must
    hold the spool's whole budget, which each process writing to it (the daemon and one
    sweep worker per CPU of the limit) may overshoot by a sixteenth; the pod must request
    the spool of the fleet it is sized for, and its limit must cover its sized volumes."""
    for name in ("VIGIL_STORE_URL", "SLACK_BOT_TOKEN", "VIGIL_AUDIT_KEY"):
        monkeypatch.setenv(name, "postgresql+psycopg://v:pw@db/v" if name == "VIGIL_STORE_URL" else "ab" * 32)
    cfg = parse_config(yaml.safe_load(objects["ConfigMap"]["data"]["vigil.yaml"]), "configmap", "/etc/vigil")
    pod = objects["Deployment"]["spec"]["template"]["spec"]
    [c] = pod["containers"]
    spool = Path(cfg.spool.directory)
    [mount] = [m for m in c["volumeMounts"] if spool.is_relative_to(m["mountPath"])]
    [volume] = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    writers = 1 + math.ceil(parse_quantity(c["resources"]["limits"]["cpu"]))
    budget = cfg.spool.max_gb * 2**30 * (1 + writers / RESCAN_FRACTION)
    assert "sizeLimit" in volume["emptyDir"], f"volume {volume['name']} holding the spool has no sizeLimit"
    assert parse_quantity(volume["emptyDir"]["sizeLimit"]) >= budget
    storage = {k: parse_quantity(c["resources"][k].get("ephemeral-storage", 0)) for k in ("requests", "limits")}
    assert storage["requests"] >= SIZED_FOR_MODELS * SPOOL_BYTES_PER_MODEL
    sized = sum(parse_quantity(v["emptyDir"]["sizeLimit"]) for v in pod["volumes"]
                if "sizeLimit" in v.get("emptyDir", {}))
    assert storage["limits"] > sized
