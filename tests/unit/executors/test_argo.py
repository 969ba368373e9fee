"""argo_rollouts against the local Kubernetes API: abort, then undo to the ReplicaSet of the
version, as the kubectl plugin does; once; under optimistic concurrency; read back."""
from __future__ import annotations

from typing import Any

import pytest

from monitor.executors.argo import HASH_LABEL, ArgoRolloutsExecutor, label_selector
from monitor.executors.base import ExecutorError, RollbackStep
from monitor.executors.config import ArgoRolloutsExecutorConfig
from monitor.executors.kube import KubeClient
from tests.fakes.argo_controller import reconcile
from tests.fakes.kube_api import FakeKubeApi
from tests.fakes.kube_objects import ARGO, NS, pod_template, replica_set, rollout

STEP = RollbackStep(model="recommender", registry_name="recommender", from_version="2", to_version="1",
                    key="rollback:incident:7")
ROLLOUT_PATH = f"/apis/argoproj.io/v1alpha1/namespaces/{NS}/rollouts/recommender"


def executor(kube_client: KubeClient, *, name: str = "recommender", label: str = "model-version",
             promote_full: bool = True) -> ArgoRolloutsExecutor:
    cfg = ArgoRolloutsExecutorConfig(kind="argo_rollouts", namespace=NS, name=name, version_label=label,
                                     promote_full=promote_full)
    return ArgoRolloutsExecutor(kube_client, cfg)


def seed(kube: FakeKubeApi, *, status_subresource: bool = True) -> None:
    """v1 is stable (revision 1), v2 is a canary in progress (revision 2); another Rollout's
    ReplicaSet with the same labels and a newer v1 must be ignored."""
    kube.put_object(rollout(version="2"), status_subresource=status_subresource)
    kube.put_object(replica_set("1", 1, "aaa111"))
    kube.put_object(replica_set("2", 2, "bbb222"))
    kube.put_object(replica_set("1", 5, "zzz999", owner_uid="someone-else", name="other"))


def stored(kube: FakeKubeApi) -> dict[str, Any]:
    return kube.get_object(*ARGO, "recommender")


def test_aborts_then_undoes_to_the_stable_template(kube: FakeKubeApi, kube_client: KubeClient) -> None:
    seed(kube)
    ex = executor(kube_client)
    assert ex.current(STEP) == "2"
    ex.apply(STEP)
    abort, undo = kube.writes()
    assert abort.path == ROLLOUT_PATH + "/status"
    assert abort.content_type == "application/merge-patch+json" and abort.body["status"] == {"abort": True}
    assert undo.path == ROLLOUT_PATH and undo.content_type == "application/json-patch+json"
    assert {"op": "replace", "path": "/spec/template", "value": pod_template("1")} in undo.body
    obj = stored(kube)
    assert obj["status"]["abort"] is True
    assert obj["spec"]["template"] == pod_template("1")  # the ReplicaSet's template, less its hash label
    assert HASH_LABEL not in obj["spec"]["template"]["metadata"]["labels"]
    assert obj["spec"]["strategy"]["canary"]["steps"]  # nothing else touched
    assert ex.current(STEP) == "1"


def test_apply_twice_writes_once(kube: FakeKubeApi, kube_client: KubeClient) -> None:
    seed(kube)
    ex = executor(kube_client)
    ex.apply(STEP)
    ex.apply(STEP)
    assert len(kube.writes()) == 2  # one abort, one undo


def test_a_restart_after_the_abort_finishes_the_undo(kube: FakeKubeApi, kube_client: KubeClient) -> None:
    seed(kube)
    kube.edit(*ARGO, "recommender", lambda o: o.setdefault("status", {}).update(abort=True))
    executor(kube_client).apply(STEP)
    [undo] = kube.writes()  # already aborted: only the undo is written
    assert undo.path == ROLLOUT_PATH
    assert stored(kube)["spec"]["template"]["metadata"]["labels"]["model-version"] == "1"


def test_without_a_replica_set_for_the_version_nothing_changes(kube: FakeKubeApi, kube_client: KubeClient) -> None:
    seed(kube)
    step = RollbackStep("recommender", "recommender", "2", "0", "rollback:8")
    with pytest.raises(ExecutorError) as e:
        executor(kube_client).apply(step)
    assert (e.value.retryable, e.value.reason) == (False, "not_found")
    assert "model-version=0" in e.value.detail and "run 1, 2" in e.value.detail
    assert kube.writes() == []  # not even the abort


def test_a_crd_without_status_subresource_is_aborted_on_the_main_resource(kube: FakeKubeApi,
                                                                           kube_client: KubeClient) -> None:
    seed(kube, status_subresource=False)
    executor(kube_client).apply(STEP)
    abort, _ = kube.writes()
    assert abort.path == ROLLOUT_PATH and abort.body["status"] == {"abort": True}
    assert stored(kube)["status"]["abort"] is True


def test_forbidden_abort_names_the_status_subresource(kube: FakeKubeApi, kube_client: KubeClient) -> None:
    seed(kube)
    kube.forbid("patch", "rollouts", "status")
    with pytest.raises(ExecutorError) as e:
        executor(kube_client).apply(STEP)
    assert e.value.reason == "forbidden" and not e.value.retryable
    assert "lacks RBAC verb 'patch' on resource 'rollouts/status' in apiGroup 'argoproj.io'" in e.value.detail


def test_forbidden_replica_set_list_says_so(kube: FakeKubeApi, kube_client: KubeClient) -> None:
    seed(kube)
    kube.forbid("list", "replicasets")
    with pytest.raises(ExecutorError) as e:
        executor(kube_client).apply(STEP)
    assert e.value.reason == "forbidden"
    assert "verb 'list' on resource 'replicasets' in apiGroup 'apps'" in e.value.detail


def test_not_found_names_the_rollout(kube: FakeKubeApi, kube_client: KubeClient) -> None:
    with pytest.raises(ExecutorError) as e:
        executor(kube_client, name="ghost").apply(STEP)
    assert e.value.reason == "not_found" and "rollouts.argoproj.io ml/ghost not found" in e.value.detail


def test_a_conflict_on_undo_is_retried_once_with_a_fresh_read(kube: FakeKubeApi, kube_client: KubeClient) -> None:
    seed(kube)
    kube.interleave(lambda: None)  # the abort goes through
    kube.interleave(lambda: kube.edit(*ARGO, "recommender", lambda o: o["metadata"].update(labels={"x": "y"})))
    executor(kube_client).apply(STEP)
    undos = [r for r in kube.requests if r.method == "PATCH" and r.path == ROLLOUT_PATH]
    assert [r.status for r in undos] == [409, 200]
    assert undos[0].body[0]["value"] != undos[1].body[0]["value"]  # the second carries the fresh resourceVersion
    assert stored(kube)["metadata"]["labels"] == {"x": "y"}


def test_verify_reads_back_spec_then_the_controller(kube: FakeKubeApi, kube_client: KubeClient) -> None:
    seed(kube)
    ex = executor(kube_client)
    ex.apply(STEP)
    v = ex.verify(STEP)
    assert (v.ok, v.settled, v.serving) == (True, False, "1")
    kube.controller_status(*ARGO, "recommender", {"currentPodHash": "bbb222", "stableRS": "aaa111",
                                                  "phase": "Healthy"})
    v = ex.verify(STEP)
    assert (v.ok, v.serving) == (False, "2")  # the controller still runs the v2 ReplicaSet
    assert "hash bbb222" in v.detail
    kube.controller_status(*ARGO, "recommender", {"currentPodHash": "aaa111", "stableRS": "aaa111",
                                                  "phase": "Degraded", "message": "ProgressDeadlineExceeded"})
    v = ex.verify(STEP)
    assert not v.ok and "ProgressDeadlineExceeded" in v.detail
    kube.controller_status(*ARGO, "recommender", {"currentPodHash": "aaa111", "stableRS": "aaa111",
                                                  "phase": "Healthy"})
    v = ex.verify(STEP)
    assert (v.ok, v.settled, v.serving) == (True, True, "1")


def test_a_rollback_paused_on_a_canary_step_says_how_to_finish_it(kube: FakeKubeApi, kube_client: KubeClient) -> None:
    """v2 was fully promoted (the stable ReplicaSet): Argo takes the undo to v1 as a new
    rollout through the canary steps and stops at `pause: {}` with most traffic on v2. The
    incident must say that and what finishes it, not only "phase Paused" (with promote_full
    off; on, Vigil promotes it itself)."""
    seed(kube)
    ex = executor(kube_client, promote_full=False)
    ex.apply(STEP)
    kube.controller_status(*ARGO, "recommender", {"currentPodHash": "aaa111", "stableRS": "bbb222",
                                                  "phase": "Paused", "message": "CanaryPauseStep",
                                                  "currentStepIndex": 1,
                                                  "pauseConditions": [{"reason": "CanaryPauseStep"}]})
    v = ex.verify(STEP)
    assert (v.ok, v.settled, v.serving) == (True, False, "1")
    assert "canary step 1 of 2" in v.detail and "stable ReplicaSet (hash bbb222) still runs 2" in v.detail
    assert "kubectl argo rollouts promote --full recommender -n ml" in v.detail and "rollbackWindow" in v.detail


def test_verify_shows_a_wrong_version(kube: FakeKubeApi, kube_client: KubeClient) -> None:
    seed(kube)
    v = executor(kube_client).verify(STEP)
    assert (v.ok, v.serving) == (False, "2")
    assert "expected 1" in v.detail


def test_version_may_be_an_annotation(kube: FakeKubeApi, kube_client: KubeClient) -> None:
    seed(kube)
    kube.edit(*ARGO, "recommender", lambda o: o["spec"]["template"]["metadata"]["annotations"].update(
        {"vigil.dev/model": "2"}))
    assert executor(kube_client, label="vigil.dev/model").current(STEP) == "2"


def test_label_selector_string() -> None:
    sel = {"matchLabels": {"app": "recsys", "tier": "serving"},
           "matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "canary"]},
                                {"key": "debug", "operator": "DoesNotExist"}]}
    assert label_selector(sel) == "app=recsys,tier=serving,env in (prod,canary),!debug"


def test_a_rollout_taking_its_template_from_a_workload_ref_is_named_not_blamed_on_someone(
        kube: FakeKubeApi, kube_client: KubeClient) -> None:
    """A Rollout with `spec.workloadRef` (its pod template in a Deployment) has no
    spec.template: that read as 'now rolls out vNone ... someone else changed it', sending
    the on-call after a deploy nobody made. It is said as it is, and nothing is written."""
    ro = rollout(version="2")
    del ro["spec"]["template"]
    ro["spec"]["workloadRef"] = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "recommender-base"}
    kube.put_object(ro)
    ex = executor(kube_client)
    for call in (ex.current, ex.apply, ex.verify):
        with pytest.raises(ExecutorError) as e:
            call(STEP)
        assert "workloadRef" in e.value.detail and "Deployment recommender-base" in e.value.detail
        assert "someone else" not in e.value.detail and (e.value.retryable, e.value.reason) == (False, "invalid")
    assert kube.writes() == []


def promoted_v2(kube: FakeKubeApi) -> None:
    """v2 went through all the canary steps: it is the stable ReplicaSet, v1 the old one."""
    seed(kube)
    assert reconcile(kube)["stableRS"] == "bbb222"


def promotes(kube: FakeKubeApi) -> list[Any]:
    return [r for r in kube.writes() if isinstance(r.body, dict) and "promoteFull" in (r.body.get("status") or {})]


def test_a_rollback_of_a_fully_promoted_version_is_promoted_fully_once_argo_has_seen_the_undo(
        kube: FakeKubeApi, kube_client: KubeClient) -> None:
    """Argo runs the undo of a fully promoted v2 as a new rollout through the canary steps and
    stops at `pause: {}` with most traffic on v2. The rollback now finishes: once the
    controller has observed the undo (before, it resets promoteFull on the new template),
    status.promoteFull is set, as `kubectl argo rollouts promote --full` does, once."""
    promoted_v2(kube)
    ex = executor(kube_client)
    ex.apply(STEP)
    v = ex.verify(STEP)
    assert (v.ok, v.settled) == (True, False) and promotes(kube) == []  # not observed yet: it would be reset
    assert reconcile(kube)["phase"] == "Paused"
    v = ex.verify(STEP)
    assert (v.ok, v.settled) == (True, False) and "promote the rollback fully" in v.detail
    [promote] = promotes(kube)
    assert promote.path == ROLLOUT_PATH + "/status" and promote.content_type == "application/merge-patch+json"
    ex.verify(STEP)
    assert len(promotes(kube)) == 1  # asked once, waiting for the controller
    assert reconcile(kube)["stableRS"] == "aaa111"
    v = ex.verify(STEP)
    assert (v.ok, v.settled, v.serving) == (True, True, "1") and "Healthy on ReplicaSet hash aaa111" in v.detail
    assert len(promotes(kube)) == 1


def test_a_restart_between_the_undo_and_the_promote_promotes_without_a_second_undo(
        kube: FakeKubeApi, kube_client: KubeClient) -> None:
    """Killed after the undo: the next cycle finds the layer at v1 (no apply, as the runner
    drives it) and its read-back finishes the rollback."""
    promoted_v2(kube)
    executor(kube_client).apply(STEP)
    reconcile(kube)
    again = executor(kube_client)  # a new process
    assert again.current(STEP) == "1"  # the runner verifies, and does not move it again
    again.verify(STEP)
    reconcile(kube)
    assert again.verify(STEP).settled
    undos = [r for r in kube.writes() if r.path == ROLLOUT_PATH and isinstance(r.body, list)]
    assert len(undos) == 1 and len(promotes(kube)) == 1


def test_promote_full_off_leaves_the_pause_to_a_person(kube: FakeKubeApi, kube_client: KubeClient) -> None:
    promoted_v2(kube)
    ex = executor(kube_client, promote_full=False)
    ex.apply(STEP)
    reconcile(kube)
    v = ex.verify(STEP)
    assert (v.ok, v.settled) == (True, False) and "promote --full recommender -n ml" in v.detail
    assert promotes(kube) == []


def test_no_promote_when_someone_changed_the_template_between_the_read_and_the_write(
        kube: FakeKubeApi, kube_client: KubeClient) -> None:
    """The promote carries the resourceVersion it was decided on: a deploy of v3 in between
    is a 409, and the fresh read (not the rollback's template) promotes nothing."""
    promoted_v2(kube)
    kube.put_object(replica_set("3", 3, "ccc333"))
    ex = executor(kube_client)
    ex.apply(STEP)
    reconcile(kube)
    kube.interleave(lambda: kube.edit(*ARGO, "recommender", lambda o: o["spec"].update(template=pod_template("3"))))
    v = ex.verify(STEP)
    assert [r.status for r in kube.requests if r.method == "PATCH" and r.path.endswith("/status")] == [200, 409]
    assert promotes(kube) == [] and not v.settled and "changed" in v.detail


def test_a_crd_without_status_subresource_is_promoted_on_the_main_resource(
        kube: FakeKubeApi, kube_client: KubeClient) -> None:
    seed(kube, status_subresource=False)
    reconcile(kube)
    ex = executor(kube_client)
    ex.apply(STEP)
    reconcile(kube)
    ex.verify(STEP)
    [promote] = promotes(kube)
    assert promote.path == ROLLOUT_PATH
    reconcile(kube)
    assert ex.verify(STEP).settled
