"""The local Kubernetes API keeps the promises in its contract summary (raw HTTP, no client)."""
from __future__ import annotations

import httpx
import pytest

from tests.fakes.kube_api import FakeKubeApi
from tests.fakes.kube_objects import KSERVE, NS, inference_service
from tests.fakes.kube_patch import json_patch, matches, merge_patch

PATH = f"/apis/serving.kserve.io/v1beta1/namespaces/{NS}/inferenceservices/recommender"


def patch(kube: FakeKubeApi, body: object, ctype: str = "application/merge-patch+json",
          sub: str = "") -> httpx.Response:
    return httpx.patch(kube.url + PATH + sub, json=body, headers={"Content-Type": ctype})


def test_resource_version_and_generation(kube: FakeKubeApi) -> None:
    kube.put_object(inference_service())
    r = patch(kube, {"metadata": {"annotations": {"a": "b"}}})
    assert r.json()["metadata"]["resourceVersion"] == "102" and r.json()["metadata"]["generation"] == 1
    r = patch(kube, {"spec": {"predictor": {"canaryTrafficPercent": 10}}})
    assert r.json()["metadata"]["resourceVersion"] == "103" and r.json()["metadata"]["generation"] == 2


def test_stale_resource_version_is_a_409_status(kube: FakeKubeApi) -> None:
    kube.put_object(inference_service())
    r = patch(kube, {"metadata": {"resourceVersion": "7"}, "spec": {"predictor": {"canaryTrafficPercent": 0}}})
    assert r.status_code == 409
    body = r.json()
    assert (body["kind"], body["reason"], body["code"]) == ("Status", "Conflict", 409)
    assert "the object has been modified" in body["message"]
    put = dict(kube.get_object(*KSERVE, "recommender"))
    put["metadata"] = {k: v for k, v in put["metadata"].items() if k != "resourceVersion"}
    r = httpx.put(kube.url + PATH, json=put)
    assert r.status_code == 422 and "must be specified for an update" in r.json()["message"]


def test_status_subresource_rules(kube: FakeKubeApi) -> None:
    kube.put_object(inference_service())
    patch(kube, {"status": {"x": 1}, "metadata": {"labels": {"a": "b"}}})
    obj = kube.get_object(*KSERVE, "recommender")
    assert "status" not in obj and obj["metadata"]["labels"] == {"a": "b"}
    patch(kube, {"status": {"x": 1}, "spec": {"predictor": None}}, sub="/status")
    obj = kube.get_object(*KSERVE, "recommender")
    assert obj["status"] == {"x": 1} and obj["spec"]["predictor"]  # /status changes only status


def test_errors_are_status_objects(kube: FakeKubeApi) -> None:
    r = httpx.get(kube.url + PATH)
    assert (r.status_code, r.json()["reason"]) == (404, "NotFound")
    kube.put_object(inference_service())
    kube.forbid("get", "inferenceservices")
    r = httpx.get(kube.url + PATH)
    assert (r.status_code, r.json()["reason"]) == (403, "Forbidden")
    assert 'cannot get resource "inferenceservices" in API group "serving.kserve.io"' in r.json()["message"]
    r = patch(kube, {"spec": {}}, ctype="application/strategic-merge-patch+json")
    assert r.status_code == 415


def test_injected_faults_then_recovery(kube: FakeKubeApi) -> None:
    kube.put_object(inference_service())
    kube.fail(503, count=2)
    assert [httpx.get(kube.url + PATH).status_code for _ in range(3)] == [503, 503, 200]
    assert [r.status for r in kube.requests] == [503, 503, 200]
    kube.fail(401)  # what kube-apiserver answers a token it does not accept (expired, revoked)
    r = httpx.get(kube.url + PATH)
    assert (r.status_code, r.json()["reason"], r.json()["message"]) == (401, "Unauthorized", "Unauthorized")
    # API Priority and Fairness (and max-in-flight) answer 429 before any API handler: plain
    # text from http.Error, not a Status object, with Retry-After.
    kube.fail(429, retry_after=2)
    r = httpx.get(kube.url + PATH)
    assert (r.status_code, r.headers["Retry-After"], r.headers["Content-Type"]) == (429, "2", "text/plain; "
                                                                                               "charset=utf-8")
    assert r.text == "Too many requests, please try again later.\n"
    kube.fail(503, retry_after=3)
    r = httpx.get(kube.url + PATH)
    assert (r.status_code, r.headers["Retry-After"], r.json()["details"]) == (503, "3", {"retryAfterSeconds": 3})


def test_merge_and_json_patch() -> None:
    assert merge_patch({"a": {"b": 1, "c": 2}, "l": [1]}, {"a": {"b": None}, "l": [2]}) == {"a": {"c": 2}, "l": [2]}
    doc = {"spec": {"t": {"x": 1}}, "l": [1, 2]}
    out = json_patch(doc, [{"op": "replace", "path": "/spec/t", "value": {"y": 2}}, {"op": "add", "path": "/l/-",
                                                                                   "value": 3}])
    assert out == {"spec": {"t": {"y": 2}}, "l": [1, 2, 3]} and doc["l"] == [1, 2]
    with pytest.raises(ValueError):
        json_patch(doc, [{"op": "test", "path": "/l/0", "value": 9}])
    with pytest.raises(ValueError):
        json_patch(doc, [{"op": "replace", "path": "/nope", "value": 1}])


def test_label_selectors() -> None:
    labels = {"app": "recsys", "env": "prod"}
    assert matches(labels, "app=recsys,env in (prod,canary)")
    assert not matches(labels, "app=recsys,env notin (prod)")
    assert matches(labels, "app,!debug") and not matches(labels, "app!=recsys")


def test_without_the_status_subresource_a_status_change_is_a_new_generation(kube: FakeKubeApi) -> None:
    """As the API server does for a CRD without the status subresource: only metadata
    changes keep the generation (with the subresource, status changes keep it too)."""
    kube.put_object(inference_service(), status_subresource=False)
    r = patch(kube, {"status": {"abort": True}})
    assert r.json()["status"] == {"abort": True} and r.json()["metadata"]["generation"] == 2


def test_a_forbidden_list_names_no_object(kube: FakeKubeApi) -> None:
    kube.forbid("list", "replicasets")
    r = httpx.get(kube.url + f"/apis/apps/v1/namespaces/{NS}/replicasets")
    assert r.status_code == 403
    assert r.json()["message"].startswith('replicasets.apps is forbidden: User "system:serviceaccount:vigil:vigil" '
                                          'cannot list resource "replicasets" in API group "apps"')


def test_an_admission_webhook_refusal_is_a_403_that_names_the_webhook(kube: FakeKubeApi) -> None:
    kube.put_object(inference_service())
    kube.deny("inferenceservices", "inferenceservice.kserve-webhook-server.validator", "storageUri is not allowed")
    r = patch(kube, {"spec": {"predictor": {"canaryTrafficPercent": 0}}})
    assert (r.status_code, r.json()["reason"]) == (403, "Forbidden")
    assert r.json()["message"] == ('admission webhook "inferenceservice.kserve-webhook-server.validator" denied the '
                                   'request: storageUri is not allowed')
    assert httpx.get(kube.url + PATH).status_code == 200  # reads are not admitted, only writes
