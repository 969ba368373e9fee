"""Silences through the HTTP API as an on-call engineer uses them: make one with matchers
(operator), list them (viewer) in the list envelope, expire one; a silenced incident still
opens and is recorded but pages no one; ack or silence on a resolved incident is 409."""
from __future__ import annotations

import hashlib
from typing import Any

import pytest
from fastapi.testclient import TestClient

from monitor.api.app import create_app
from monitor.vigil import Vigil
from tests.helpers_vigil import MODEL, T0, incident_prometheus, make_config, make_vigil

pytestmark = pytest.mark.integration
TOKENS = {"vera": "vera-viewer-token-5d1e0c", "olga": "olga-operator-token-93b7aa"}


def bearer(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[name]}"}


class Api:
    def __init__(self, vigil: Vigil) -> None:
        self.vigil = vigil
        self.client = TestClient(create_app(vigil), raise_server_exceptions=False)

    def post(self, url: str, body: Any, who: str = "olga") -> Any:
        return self.client.post(url, json=body, headers=bearer(who))

    def get(self, url: str, who: str = "vera", **params: Any) -> Any:
        return self.client.get(url, params=params, headers=bearer(who))

    def delete(self, url: str, who: str = "olga") -> Any:
        return self.client.delete(url, headers=bearer(who))

    def incident_messages(self) -> list[Any]:
        store = self.vigil.store
        return [m for row in store.incidents() for m in store.outbox_for_prefix(f"incident:{row.id}")]


@pytest.fixture
def api(tmp_path) -> Api:
    tokens = [{"name": n, "role": r, "token_sha256": hashlib.sha256(TOKENS[n].encode()).hexdigest()}
              for n, r in (("vera", "viewer"), ("olga", "operator"))]
    cfg = make_config(tmp_path, api={"tokens": tokens})
    return Api(make_vigil(cfg, prometheus=incident_prometheus(bad_until=T0 + 120), notifiers={"sink": _Sink()}))


class _Sink:
    name = "sink"

    def deliver(self, message):  # noqa: ANN001, ANN201 - a notifier that takes everything
        from alerts.outbox import DeliveryResult, DeliveryStatus
        return DeliveryResult(DeliveryStatus.DELIVERED)


def silence(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"matchers": ['model="recommender"', {"name": "severity", "value": "warning|critical",
                                                                 "isRegex": True}],
                            "starts_at": T0 - 60, "ends_at": T0 + 3600, "comment": "feature store migration, OPS-42"}
    body.update(over)
    return body


def test_operator_creates_viewer_lists_operator_expires_and_all_is_audited(api):
    r = api.post("/v1/silences", silence())
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["created_by"] == "olga" and made["status"]["state"] == "pending"  # T0 is in the future
    assert [m["text"] for m in made["matchers"]] == ['model="recommender"', 'severity=~"warning|critical"']
    for i in range(2):
        api.post("/v1/silences", silence(comment=f"another {i}", matchers=[f"model=other{i}"]))

    page = api.get("/v1/silences", limit=2).json()
    assert page["total"] == 3 and len(page["items"]) == 2 and "offset=2" in page["next"]
    last = api.client.get(page["next"], headers=bearer("vera")).json()
    assert [s["id"] for s in last["items"]] == [made["id"]] and last["next"] is None

    assert api.post("/v1/silences", silence(), who="vera").status_code == 403  # a viewer may not silence
    r = api.delete(f"/v1/silences/{made['id']}")
    assert r.status_code == 200 and r.json()["status"]["state"] == "expired"
    assert api.get("/v1/silences", state="expired").json()["total"] == 1
    assert api.delete("/v1/silences/999").status_code == 404
    actions = [(e.action, e.actor) for e in api.vigil.store.audit_entries()]
    assert ("silence.create", "api:olga") in actions and ("silence.expire", "api:olga") in actions


@pytest.mark.parametrize(("over", "field"), [
    ({"matchers": []}, "matchers"),
    ({"matchers": ["model recommender"]}, "matchers[0]"),
    ({"matchers": [{"name": "model", "value": "(", "isRegex": True}]}, "matchers[0]"),
    ({"matchers": ['model=~".*"']}, "matchers"),
    ({"ends_at": T0 - 120}, "ends_at"),
    ({"ends_at": "tomorrow"}, "ends_at"),
    ({"ends_at": None, "duration": "forever"}, "duration"),
    ({"comment": ""}, "comment"),
])
def test_a_bad_silence_is_422_naming_the_field(api, over, field):
    r = api.post("/v1/silences", silence(**over))
    assert r.status_code == 422, r.text
    assert field in [f["field"] for f in r.json()["fields"]], r.json()


def test_a_silenced_incident_opens_and_is_recorded_but_pages_no_one_until_the_silence_ends(api):
    made = api.post("/v1/silences", silence()).json()
    report = api.vigil.run_cycle(MODEL, T0)
    assert report.step == "open"
    (row,) = api.vigil.store.incidents(model=MODEL)
    assert row.status == "open" and f"muted: silence {made['id']}" in " ".join(row.reasons)
    assert api.incident_messages() == []  # recorded, not paged

    api.delete(f"/v1/silences/{made['id']}")  # ended: the next cycle pages what is still wrong
    api.vigil.run_cycle(MODEL, T0 + 60)
    assert {m.payload["status"] for m in api.incident_messages() if m.kind == "incident"} == {"open"}


def test_a_silence_on_another_model_or_severity_does_not_mute(api):
    api.post("/v1/silences", silence(matchers=['model="ranker"']))
    api.post("/v1/silences", silence(matchers=['model="recommender"', 'kind="gpu_saturation"']))
    api.vigil.run_cycle(MODEL, T0)
    assert api.incident_messages(), "nothing matched: the incident paged"


def test_ack_or_silence_on_a_resolved_incident_is_409(api):
    api.vigil.run_cycle(MODEL, T0)
    for t in (T0 + 720, T0 + 780):
        api.vigil.run_cycle(MODEL, t)
    (row,) = api.vigil.store.incidents(model=MODEL)
    assert row.status == "resolved"
    r = api.post(f"/v1/incidents/{row.id}/ack", None)
    assert r.status_code == 409 and "resolved" in r.json()["error"]
    r = api.post(f"/v1/incidents/{row.id}/silence", {"duration_s": 3600, "reason": "noise"})
    assert r.status_code == 409
    assert not [e for e in api.vigil.store.audit_entries() if e.action in ("incident.ack", "incident.silence")]


@pytest.mark.parametrize("meanwhile", ["made", "expired"])
def test_following_next_neither_repeats_nor_skips_while_silences_are_made_and_expired(api, meanwhile):
    """Newest first by offset: a silence made between two pages pushed the list down (the
    next page began with one already shown), and one expired under state=active pulled it
    up (an active silence never listed). `next` now pins the listing where it began."""
    import time

    now = time.time()
    for i in range(5):
        assert api.post("/v1/silences", silence(matchers=[f'model="m{i}"'], starts_at=now - 60,
                                                ends_at=now + 3600)).status_code == 201
    before = [s["id"] for s in api.get("/v1/silences", state="active").json()["items"]]
    page = api.get("/v1/silences", state="active", limit=2).json()
    seen = [s["id"] for s in page["items"]]
    if meanwhile == "made":
        api.post("/v1/silences", silence(matchers=['model="new"'], starts_at=now - 60, ends_at=now + 3600))
    else:
        assert api.delete(f"/v1/silences/{seen[0]}").status_code == 200
    while page["next"] is not None:
        assert "offset=" in page["next"] and "state=active" in page["next"]
        page = api.client.get(page["next"], headers=bearer("vera")).json()
        seen += [s["id"] for s in page["items"]]
    assert seen == before, "each silence active when the listing began, once, newest first"
