"""kserve against the local Kubernetes API: moves the predictor back (or pins a canary to 0),
once, under optimistic concurrency, and reads back spec and status."""
from __future__ import annotations

import time
from typing import Any

import pytest

from monitor.executors.base import ExecutorError, RollbackStep
from monitor.executors.config import KServeExecutorConfig
from monitor.executors.guarded import Guarded
from monitor.executors.kserve import URI_ANNOTATION, VERSION_ANNOTATION, KServeExecutor, StorageUriTemplate
from monitor.executors.kube import KubeClient, api_client_at
from tests.fakes.dripping import dripping_receiver
from tests.fakes.kube_api import FakeKubeApi
from tests.fakes.kube_objects import KSERVE, NS, inference_service, kserve_status

STEP = RollbackStep(model="recommender", registry_name="recommender", from_version="2", to_version="1",
                    key="rollback:incident:7")
TEMPLATE = "s3://models/{registry}/{version}"


def executor(kube_client: KubeClient, *, mode: str = "auto", name: str = "recommender") -> KServeExecutor:
    cfg = KServeExecutorConfig(kind="kserve", namespace=NS, name=name, storage_uri_template=TEMPLATE, mode=mode)
    return KServeExecutor(kube_client, cfg)


def stored(kube: FakeKubeApi) -> dict[str, Any]:
    return kube.get_object(*KSERVE, "recommender")


def test_points_the_predictor_back_at_the_stable_model(kube: FakeKubeApi, kube_client: KubeClient) -> None:
    kube.put_object(inference_service(uri="s3://models/recommender/2"))
    ex = executor(kube_client)
    assert ex.current(STEP) == "2"
    ex.apply(STEP)
    obj = stored(kube)
    assert obj["spec"]["predictor"]["model"]["storageUri"] == "s3://models/recommender/1"
    assert obj["metadata"]["annotations"][VERSION_ANNOTATION] == "1"
    assert obj["spec"]["predictor"]["model"]["modelFormat"] == {"name": "sklearn"}  # the rest is untouched
    assert ex.current(STEP) == "1"
    [write] = kube.writes()
    assert write.content_type == "application/merge-patch+json"
    assert write.body["metadata"]["resourceVersion"] == "101"  # the version it read: optimistic concurrency


def test_apply_twice_writes_once(kube: FakeKubeApi, kube_client: KubeClient) -> None:
    kube.put_object(inference_service(uri="s3://models/recommender/2"))
    ex = executor(kube_client)
    ex.apply(STEP)
    ex.apply(STEP)
    assert len(kube.writes()) == 1


def test_canary_in_progress_is_pinned_to_zero(kube: FakeKubeApi, kube_client: KubeClient) -> None:
    kube.put_object(inference_service(uri="s3://models/recommender/2", canary=10))
    ex = executor(kube_client)
    assert ex.current(STEP) == "2"  # the canary is what a rollback moves away from
    ex.apply(STEP)
    ex.apply(STEP)
    obj = stored(kube)
    assert obj["spec"]["predictor"]["canaryTrafficPercent"] == 0
    assert obj["spec"]["predictor"]["model"]["storageUri"] == "s3://models/recommender/2"
    assert obj["metadata"]["annotations"][VERSION_ANNOTATION] == "1"
    assert obj["metadata"]["annotations"][URI_ANNOTATION] == "s3://models/recommender/2"
    assert ex.current(STEP) == "1"
    assert len(kube.writes()) == 1


def test_storage_uri_mode_ends_a_canary(kube: FakeKubeApi, kube_client: KubeClient) -> None:
    kube.put_object(inference_service(uri="s3://models/recommender/2", canary=10))
    executor(kube_client, mode="storage_uri").apply(STEP)
    predictor = stored(kube)["spec"]["predictor"]
    assert predictor["model"]["storageUri"] == "s3://models/recommender/1"
    assert "canaryTrafficPercent" not in predictor  # the new revision takes all traffic


def test_canary_mode_without_a_canary_refuses(kube: FakeKubeApi, kube_client: KubeClient) -> None:
    kube.put_object(inference_service(uri="s3://models/recommender/2"))
    with pytest.raises(ExecutorError) as e:
        executor(kube_client, mode="canary").apply(STEP)
    assert not e.value.retryable and "no canary in progress" in e.value.detail
    assert kube.writes() == []


def test_a_canary_pinned_by_someone_else_is_unknown(kube: FakeKubeApi, kube_client: KubeClient) -> None:
    kube.put_object(inference_service(uri="s3://models/recommender/3", canary=0,
                                      annotations={VERSION_ANNOTATION: "1", URI_ANNOTATION: "s3://models/recommender/2"}))
    assert executor(kube_client).current(STEP) is None  # the record is for another storageUri


def test_not_found_names_the_resource(kube: FakeKubeApi, kube_client: KubeClient) -> None:
    with pytest.raises(ExecutorError) as e:
        executor(kube_client, name="missing").current(STEP)
    assert (e.value.retryable, e.value.reason) == (False, "not_found")
    assert "inferenceservices.serving.kserve.io ml/missing not found" in e.value.detail


def test_forbidden_names_the_verb_and_resource(kube: FakeKubeApi, kube_client: KubeClient) -> None:
    kube.put_object(inference_service())
    kube.forbid("patch", "inferenceservices")
    with pytest.raises(ExecutorError) as e:
        executor(kube_client).apply(STEP)
    assert (e.value.retryable, e.value.reason) == (False, "forbidden")
    assert "lacks RBAC verb 'patch' on resource 'inferenceservices' in apiGroup 'serving.kserve.io'" in e.value.detail
    assert "namespace 'ml'" in e.value.detail
    assert stored(kube)["spec"]["predictor"]["model"]["storageUri"] == "s3://models/recommender/2"


def test_an_admission_webhooks_refusal_is_not_blamed_on_rbac(kube: FakeKubeApi, kube_client: KubeClient) -> None:
    """A validating webhook (KServe's own, Gatekeeper, Kyverno) refuses with 403 Forbidden
    like RBAC: an SRE sent to fix RBAC that is fine loses the time the bad model serves."""
    kube.put_object(inference_service())
    kube.deny("inferenceservices", "validation.gatekeeper.sh", "[must-pin-models] storageUri must be on s3://prod")
    with pytest.raises(ExecutorError) as e:
        executor(kube_client).apply(STEP)
    assert (e.value.retryable, e.value.reason) == (False, "rejected")
    assert "lacks RBAC" not in e.value.detail
    assert 'admission webhook "validation.gatekeeper.sh" refused to patch inferenceservices.serving.kserve.io ' \
           'ml/recommender' in e.value.detail
    assert "[must-pin-models] storageUri must be on s3://prod" in e.value.detail


def test_rejected_credentials_are_tried_again_next_cycle(kube: FakeKubeApi, kube_client: KubeClient) -> None:
    """A 401 is most often a token that expired or rotated between the client's refresh and
    the request (projected service-account tokens, exec-plugin tokens of EKS or GKE): failing
    the rollback for good on it settled the incident's automatic rollback, never asked again."""
    kube.put_object(inference_service())
    kube.fail(401)
    with pytest.raises(ExecutorError) as e:
        executor(kube_client).apply(STEP)
    assert (e.value.retryable, e.value.reason) == (True, "unauthorized")
    assert "HTTP 401" in e.value.detail and "Unauthorized" in e.value.detail
    assert kube.writes() == [] and len(kube.requests) == 1  # not asked again at once: the same token would fail
    executor(kube_client).apply(STEP)  # the next attempt, with the credentials read again
    assert stored(kube)["spec"]["predictor"]["model"]["storageUri"] == "s3://models/recommender/1"


def test_a_conflict_is_retried_once_with_a_fresh_read(kube: FakeKubeApi, kube_client: KubeClient) -> None:
    kube.put_object(inference_service())

    def other_writer() -> None:  # someone labels the object between our read and our write
        kube.edit(*KSERVE, "recommender", lambda o: o["metadata"]["annotations"].update({"team": "recsys"}))

    kube.interleave(other_writer)
    executor(kube_client).apply(STEP)
    patches = [r for r in kube.requests if r.method == "PATCH"]
    assert [r.status for r in patches] == [409, 200]
    assert patches[1].body["metadata"]["resourceVersion"] == "102"  # re-read after the conflict
    obj = stored(kube)
    assert obj["metadata"]["annotations"]["team"] == "recsys"  # their change is kept
    assert obj["spec"]["predictor"]["model"]["storageUri"] == "s3://models/recommender/1"


def test_a_second_conflict_is_a_retryable_error(kube: FakeKubeApi, kube_client: KubeClient) -> None:
    kube.put_object(inference_service())
    for _ in range(2):
        kube.interleave(lambda: kube.edit(*KSERVE, "recommender", lambda o: o["metadata"].setdefault("labels", {})))
    with pytest.raises(ExecutorError) as e:
        executor(kube_client).apply(STEP)
    assert (e.value.retryable, e.value.reason) == (True, "conflict")
    assert "409" in e.value.detail


def test_a_concurrent_deploy_is_left_alone(kube: FakeKubeApi, kube_client: KubeClient) -> None:
    kube.put_object(inference_service())
    kube.interleave(lambda: kube.edit(*KSERVE, "recommender", lambda o: o["spec"]["predictor"]["model"].update(
        storageUri="s3://models/recommender/3")))
    with pytest.raises(ExecutorError) as e:
        executor(kube_client).apply(STEP)
    assert (e.value.retryable, e.value.reason) == (False, "changed")
    assert "now serves v3" in e.value.detail
    assert stored(kube)["spec"]["predictor"]["model"]["storageUri"] == "s3://models/recommender/3"


def test_a_layer_already_moved_elsewhere_is_left_alone(kube: FakeKubeApi, kube_client: KubeClient) -> None:
    kube.put_object(inference_service(uri="s3://models/recommender/3"))
    with pytest.raises(ExecutorError) as e:
        executor(kube_client).apply(STEP)
    assert e.value.reason == "changed" and kube.writes() == []


def test_server_errors_are_retried_then_reported(kube: FakeKubeApi, kube_client: KubeClient) -> None:
    kube.put_object(inference_service())
    kube.fail(503, count=2)
    assert executor(kube_client).current(STEP) == "2"  # third attempt answers
    kube.fail(500, count=3)
    with pytest.raises(ExecutorError) as e:
        executor(kube_client).current(STEP)
    assert (e.value.retryable, e.value.reason) == (True, "unavailable")
    assert "HTTP 500" in e.value.detail


def test_a_throttled_api_server_is_asked_again_when_it_said(kube: FakeKubeApi, kube_client: KubeClient) -> None:
    """API Priority and Fairness answers 429 with Retry-After: three attempts inside its
    second all came back 429, and the rollback waited a whole cycle."""
    kube.put_object(inference_service())
    kube.fail(429, count=1, retry_after=1)
    assert executor(kube_client).current(STEP) == "2"
    first, second = kube.requests
    assert first.status == 429 and second.status == 200
    assert second.at - first.at >= 0.95


def test_a_retry_after_past_the_steps_deadline_ends_the_try_at_once(kube: FakeKubeApi) -> None:
    kube.put_object(inference_service())
    kube.fail(429, count=1, retry_after=30)
    started = time.monotonic()
    with pytest.raises(ExecutorError) as e:
        Guarded(executor(KubeClient(api_client_at(kube.url), backoff_s=0.01)), started + 2.0).current(STEP)
    assert (e.value.retryable, e.value.reason) == (True, "unavailable") and "HTTP 429" in e.value.detail
    assert time.monotonic() - started < 1.0 and len(kube.requests) == 1
    kube.fail(429, count=1, retry_after=3600)  # no deadline (check-config): not an hour's sleep either
    with pytest.raises(ExecutorError) as e:
        executor(KubeClient(api_client_at(kube.url), backoff_s=0.01)).current(STEP)
    assert time.monotonic() - started < 1.5 and len(kube.requests) == 2


def test_a_slow_api_server_times_out_as_retryable(kube: FakeKubeApi) -> None:
    
    kube.put_object(inference_service())
    kube.delay(1.5)
    slow = KubeClient(api_client_at(kube.url), timeout_s=0.3, max_attempts=1)
    with pytest.raises(ExecutorError) as e:
        executor(slow).current(STEP)
    assert (e.value.retryable, e.value.reason) == (True, "unavailable")
    assert kube.url in e.value.detail


def test_an_api_server_dripping_its_answer_is_cut_at_timeout_s() -> None:
    """timeout_s bounds the whole answer: urllib3's bounds each read, and an API server (or a
    proxy before it) sending a byte at a time held a 1 s timeout for 10 s, past the step's time."""
    with dripping_receiver(byte_every_s=0.25, length=40) as url:
        started = time.monotonic()
        with pytest.raises(ExecutorError) as e:
            executor(KubeClient(api_client_at(url), timeout_s=1.0, max_attempts=1)).current(STEP)
        took = time.monotonic() - started
    assert took < 2.5, took
    assert (e.value.retryable, e.value.reason) == (True, "unavailable") and "within 1 s" in e.value.detail


def test_a_slow_api_server_is_not_waited_for_past_the_steps_deadline(kube: FakeKubeApi) -> None:
    """timeout_s x max_attempts (30 s here) would hold the model's cycle; the rollback's step
    budget ends the call instead, and the rollback resumes at the next cycle."""
    kube.put_object(inference_service())
    kube.delay(3.0, count=3)
    slow = KubeClient(api_client_at(kube.url), timeout_s=10.0, max_attempts=3, backoff_s=0.01)
    layer = Guarded(executor(slow), deadline=time.monotonic() + 1.0)
    started = time.monotonic()
    with pytest.raises(ExecutorError) as e:
        layer.current(STEP)
    assert time.monotonic() - started < 2.5
    assert e.value.retryable


def test_verify_waits_for_kserve_then_checks_readiness_and_traffic(kube: FakeKubeApi,
                                                                     kube_client: KubeClient) -> None:
    kube.put_object(inference_service())
    ex = executor(kube_client)
    ex.apply(STEP)
    v = ex.verify(STEP)
    assert (v.ok, v.settled, v.serving) == (True, False, "1")
    assert "not yet reconciled" in v.detail
    kube.controller_status(*KSERVE, "recommender", kserve_status(traffic=[("latest", 100, True)]))
    v = ex.verify(STEP)
    assert (v.ok, v.settled) == (True, True)
    kube.controller_status(*KSERVE, "recommender", kserve_status(ready="False", traffic=[("latest", 100, True)]))
    v = ex.verify(STEP)
    assert not v.ok and "Ready=False" in v.detail and "model failed to load" in v.detail


def test_verify_of_a_canary_rollback_checks_the_traffic_split(kube: FakeKubeApi, kube_client: KubeClient) -> None:
    kube.put_object(inference_service(canary=10))
    ex = executor(kube_client)
    ex.apply(STEP)
    kube.controller_status(*KSERVE, "recommender", kserve_status(traffic=[("prev", 90, False), ("latest", 10, True)]))
    v = ex.verify(STEP)
    assert not v.ok and "prev 90%, latest 10%" in v.detail
    kube.controller_status(*KSERVE, "recommender", kserve_status(traffic=[("prev", 100, False), ("latest", 0, True)]))
    assert ex.verify(STEP).ok


def test_verify_shows_a_wrong_version(kube: FakeKubeApi, kube_client: KubeClient) -> None:
    kube.put_object(inference_service())
    ex = executor(kube_client)
    ex.apply(STEP)
    kube.edit(*KSERVE, "recommender", lambda o: o["spec"]["predictor"]["model"].update(
        storageUri="s3://models/recommender/3"))
    v = ex.verify(STEP)
    assert (v.ok, v.serving) == (False, "3")
    assert "expected v1" in v.detail


def test_a_uri_outside_the_template_is_unknown(kube: FakeKubeApi, kube_client: KubeClient) -> None:
    kube.put_object(inference_service(uri="gs://elsewhere/model-2"))
    ex = executor(kube_client)
    assert ex.current(STEP) is None
    v = ex.verify(STEP)
    assert not v.ok and "does not follow s3://models/{registry}/{version}" in v.detail


@pytest.mark.parametrize(("template", "uri", "version"), [
    ("models:/{registry}/{version}", "models:/recommender/12", "12"),
    ("s3://bucket/{registry}/v{version}/model", "s3://bucket/recommender/v3/model", "3"),
    ("s3://bucket/{registry}/{version}", "s3://bucket/other/3", None),
    ("s3://bucket/{model}-{version}", "s3://bucket/recommender-3", "3"),
])
def test_storage_uri_template_both_ways(template: str, uri: str, version: str | None) -> None:
    t = StorageUriTemplate(template)
    assert t.version_of(uri, STEP) == version
    if version is not None:
        assert t.format(STEP, version) == uri


def test_template_escapes_registry_names() -> None:
    t = StorageUriTemplate("s3://b/{registry}/{version}")
    step = RollbackStep("m", "a.b", None, "1", "k")
    assert t.version_of("s3://b/a.b/4", step) == "4"
    assert t.version_of("s3://b/axb/4", step) is None


def _serving_since_long(kube: FakeKubeApi, *, generation: int, observed: int) -> None:
    """An InferenceService KServe has served for a while. KServe copies `status.observedGeneration`
    from the Knative Service it manages (PropagateStatus), whose generation is its own
    count, not the InferenceService's: it can be ahead (KServe upgrades and config changes
    rewrite the Knative Service) or behind (InferenceService edits that change no template)."""
    obj = inference_service(uri="s3://models/recommender/2")
    obj["metadata"]["generation"] = generation
    obj["status"] = {**kserve_status(traffic=[("latest", 100, True)], created="r-7", ready_rev="r-7"),
                     "observedGeneration": observed}
    kube.put_object(obj)


def _kserve_rolled_out(kube: FakeKubeApi, revision: str, observed: int) -> None:
    def change(o: dict[str, Any]) -> None:
        o["status"] = {**kserve_status(traffic=[("latest", 100, True)], created=revision, ready_rev=revision),
                       "observedGeneration": observed}
    kube.edit(*KSERVE, "recommender", change)


def test_verify_right_after_the_patch_is_not_fooled_by_the_old_revisions_status(kube: FakeKubeApi,
                                                                               kube_client: KubeClient) -> None:
    _serving_since_long(kube, generation=3, observed=9)  # the Knative Service is at generation 9
    ex = executor(kube_client)
    ex.apply(STEP)
    v = ex.verify(STEP)  # KServe has not acted yet: its status is still about revision r-7, serving v2
    assert (v.ok, v.settled) == (True, False), v.detail
    _kserve_rolled_out(kube, "r-8", observed=10)
    v = ex.verify(STEP)
    assert (v.ok, v.settled) == (True, True), v.detail


def test_verify_settles_when_the_knative_generation_lags_the_inference_service(kube: FakeKubeApi,
                                                                               kube_client: KubeClient) -> None:
    _serving_since_long(kube, generation=5, observed=2)
    ex = executor(kube_client)
    ex.apply(STEP)
    _kserve_rolled_out(kube, "r-8", observed=3)  # the new revision serves all traffic
    v = ex.verify(STEP)
    assert (v.ok, v.settled) == (True, True), v.detail


def test_a_framework_predictor_is_read_and_moved_where_its_storage_uri_is(kube: FakeKubeApi,
                                                                          kube_client: KubeClient) -> None:
    """KServe v1beta1 still takes the framework form (`spec.predictor.sklearn.storageUri`,
    likewise tensorflow, pytorch, xgboost, ...). It read as 'now serves vNone ... someone
    else changed it', and a patch of `predictor.model` beside `sklearn` is two predictor
    implementations, which KServe refuses. The URI is read and written where it is."""
    obj = inference_service(uri="s3://models/recommender/2")
    predictor = obj["spec"]["predictor"]
    predictor["sklearn"] = {"storageUri": predictor.pop("model")["storageUri"], "protocolVersion": "v2"}
    kube.put_object(obj)
    ex = executor(kube_client)
    assert ex.current(STEP) == "2"
    ex.apply(STEP)
    after = stored(kube)["spec"]["predictor"]
    assert "model" not in after and after["sklearn"] == {"storageUri": "s3://models/recommender/1",
                                                         "protocolVersion": "v2"}
    assert ex.current(STEP) == "1"
