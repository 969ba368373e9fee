"""The HTTP API as a client sees it: FastAPI's TestClient over `create_app(vigil)`.

The Vigil runs real cycles on a temp SQLite store; Prometheus and the MLflow registry
are in-memory stand-ins (tests/helpers_vigil.py), since the real clients have their own
tests and the API is the point here.
"""
from __future__ import annotations

import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from monitor.api.app import create_app
from monitor.store.tables import IncidentRow
from monitor.vigil import Vigil
from tests.helpers_vigil import (
    MODEL,
    T0,
    MemoryRegistry,
    incident_prometheus,
    make_config,
    make_vigil,
    model_config,
    serving_registry,
)

TOKEN = "vigil-api-test-token-8c2f"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ROLLBACK = f"/v1/models/{MODEL}/rollback"


class Api:
    """A client holding the admin token (`api.token`), one holding none (`anon`), and the
    Vigil and registry behind them."""

    def __init__(self, vigil: Vigil, registry: MemoryRegistry) -> None:
        self.vigil = vigil
        self.registry = registry
        self.app = create_app(vigil)
        self.client = TestClient(self.app, raise_server_exceptions=False, headers=AUTH)
        self.anon = TestClient(self.app, raise_server_exceptions=False)

    def deploy(self, version: str, at: float) -> None:
        """Someone moves the alias in the registry; Vigil's next registry poll records it."""
        self.registry.aliases[(MODEL, "champion")] = version
        self.vigil.deploys.poll(self.vigil.config.model(MODEL), at)

    def post(self, url: str, body: Any = None, headers: dict[str, str] | None = None, **kw: Any) -> Any:
        return self.client.post(url, json=body, headers={**AUTH, **(headers or {})}, **kw)

    def alias(self) -> str | None:
        return self.registry.aliases.get((MODEL, "champion"))

    def audit_actions(self) -> list[str]:
        return [e["action"] for e in self.client.get("/v1/audit").json()["items"]]


def build(tmp_path, monkeypatch, *, token: str | None = TOKEN, api: dict[str, Any] | None = None,
          **config: Any) -> Api:
    """`token`: the old single `api.token` (an admin named "admin"); `api`: more of the api section."""
    if token is None:
        monkeypatch.delenv("VIGIL_TEST_TOKEN", raising=False)
    else:
        monkeypatch.setenv("VIGIL_TEST_TOKEN", token)
    cfg = make_config(tmp_path, api={"token": "${VIGIL_TEST_TOKEN:-}", **(api or {})}, **config)
    registry = serving_registry(versions=("1", "2", "3"))
    vigil = make_vigil(cfg, prometheus=incident_prometheus(), registry=registry, notifiers={})
    api = Api(vigil, registry)
    # First sight: v1 serves, nothing before it is known. Registry moves are dated in real
    # time, like the rollbacks the API performs (it has no replay clock).
    api.vigil.deploys.poll(cfg.model(MODEL), time.time() - 7200)
    return api


@pytest.fixture
def api(tmp_path, monkeypatch) -> Api:
    return build(tmp_path, monkeypatch)


@pytest.fixture
def deployed(api: Api) -> Api:
    """v2 replaced v1 an hour ago."""
    api.deploy("2", time.time() - 3600)
    return api


# ----------------------------------------------------------------------------- health
def test_healthz_and_readyz_list_the_sources(api):
    assert api.client.get("/healthz").json() == {"status": "ok"}
    r = api.client.get("/readyz")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ready" and body["store"] == "up"
    assert set(body["sources"]) == {"prometheus", "mlflow"}
    assert body["sources"]["mlflow"]["status"] == "up"  # the registry answered the poll


def test_a_dead_prometheus_makes_vigil_degraded_but_reachable(api):
    api.vigil.prometheus.down = True
    report = api.vigil.run_cycle(MODEL, T0)
    assert report.blind, "the cycle says it could not see"
    r = api.client.get("/readyz")
    assert r.status_code == 200, "the API (rollback included) stays reachable"
    body = r.json()
    assert body["status"] == "degraded"
    assert body["sources"]["prometheus"]["status"] == "down"
    assert "connection refused" in body["sources"]["prometheus"]["detail"]


def test_metrics_exposes_vigil_series_in_prometheus_text(api):
    api.vigil.run_cycle(MODEL, T0)
    r = api.client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert f'vigil_incidents_total{{model="{MODEL}",severity="warning"}} 1.0' in text
    assert f'vigil_model_state{{model="{MODEL}"}} 1.0' in text
    assert f'vigil_findings_total{{kind="kpi_drop",model="{MODEL}"}} 1.0' in text
    assert "vigil_cycle_duration_seconds_count" in text


# ----------------------------------------------------------------------------- rollback: access
def test_rollback_without_a_token_is_401_with_a_bearer_challenge(deployed):
    r = deployed.anon.post(ROLLBACK, json={"reason": "ctr dropped"})
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert "bearer" in r.json()["error"].lower()
    assert deployed.alias() == "2"


def test_rollback_with_a_wrong_token_is_401(deployed):
    r = deployed.anon.post(ROLLBACK, json={"reason": "ctr dropped"}, headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401 and r.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert deployed.alias() == "2" and deployed.audit_actions() == []


def test_write_endpoints_are_disabled_without_a_configured_token(tmp_path, monkeypatch):
    api = build(tmp_path, monkeypatch, token=None)
    assert api.vigil.config.api.token is None
    for url, body in ((ROLLBACK, {"reason": "ctr dropped", "to_version": "1"}),
                      ("/v1/samples", {"model": MODEL, "records": [{"timestamp": T0}]})):
        r = api.anon.post(url, json=body, headers={"Authorization": "Bearer anything"})
        assert r.status_code == 503
        assert "api.token" in r.json()["error"]
    assert api.alias() == "1"


def test_rollback_of_an_unknown_model_is_404_listing_the_monitored_ones(tmp_path, monkeypatch):
    api = build(tmp_path, monkeypatch, models=[model_config(), model_config("fraud")])
    r = api.post("/v1/models/recomender/rollback", {"reason": "ctr dropped", "to_version": "1"})
    assert r.status_code == 404
    assert "'recomender'" in r.json()["error"]
    assert "recommender" in r.json()["error"].split("monitored models:")[1]
    assert "fraud" in r.json()["error"]


@pytest.mark.parametrize("body, field, words", [
    ({"to_version": "1"}, "reason", "missing"),
    ({"reason": "ctr dropped", "forced": True}, "forced", "unknown field"),
    ({"reason": "ctr dropped", "to_version": "v1"}, "to_version", "pattern"),
    ({"reason": "ctr dropped", "to_version": 1}, "to_version", "string"),
    ({"reason": "x"}, "reason", "at least 3"),
])
def test_rollback_bad_bodies_are_422_naming_the_field(deployed, body, field, words):
    r = deployed.post(ROLLBACK, body)
    assert r.status_code == 422
    fields = {f["field"]: f["message"] for f in r.json()["fields"]}
    assert field in fields and words in fields[field]
    assert field in r.json()["error"]
    assert deployed.alias() == "2"


@pytest.mark.parametrize("dry_run", [False, True])
def test_rollback_to_a_version_the_registry_does_not_have_is_422(deployed, dry_run):
    r = deployed.post(ROLLBACK, {"reason": "ctr dropped", "to_version": "9", "dry_run": dry_run})
    assert r.status_code == 422, r.text
    [field] = r.json()["fields"]
    assert field["field"] == "to_version" and "version 9" in field["message"]
    assert deployed.alias() == "2" and deployed.audit_actions() == []


def test_a_registry_that_cannot_answer_fails_the_rollback_with_502(deployed):
    deployed.registry.down = True
    r = deployed.post(ROLLBACK, {"reason": "ctr dropped", "to_version": "1"})
    assert r.status_code == 502
    assert r.json()["status"] == "failed" and "connection refused" in r.json()["error"]
    # The intent was recorded (from the last version seen), then failed: nothing moved.
    assert deployed.audit_actions() == ["rollback.requested", "rollback.failed"]


def test_rollback_without_a_known_previous_version_is_409(api):
    r = api.post(ROLLBACK, {"reason": "ctr dropped"})
    assert r.status_code == 409
    assert "to_version" in r.json()["error"]
    assert api.alias() == "1" and api.audit_actions() == []


# ----------------------------------------------------------------------------- rollback: effect
def test_rollback_moves_the_alias_back_and_is_audited(deployed):
    r = deployed.post(ROLLBACK, {"reason": "CTR -10% since v2"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["status"], body["from_version"], body["to_version"]) == ("done", "2", "1")
    assert deployed.alias() == "1"
    assert deployed.registry.moves == [(MODEL, "champion", "1")]

    audit = deployed.client.get("/v1/audit").json()
    assert audit["chain"]["ok"] and audit["chain"]["checked"] == 2
    requested, done = audit["items"]
    assert (requested["action"], done["action"]) == ("rollback.requested", "rollback.done")
    assert requested["detail"]["reason"] == "CTR -10% since v2" and requested["target"] == f"model:{MODEL}"
    # The caller is named by its token's name (api.token is "admin"); the token itself is never stored.
    assert requested["actor"] == body["actor"] == "api:admin"
    assert TOKEN not in deployed.client.get("/v1/audit").text

    [action] = deployed.vigil.store.actions(model=MODEL)
    assert (action.status, action.to_version, action.actor) == ("done", "1", body["actor"])
    # The registry poll after the rollback does not mistake Vigil's own move for a deploy.
    assert deployed.vigil.deploys.poll(deployed.vigil.config.model(MODEL), T0)[1] == []


def test_dry_run_records_what_would_happen_and_moves_nothing(deployed):
    r = deployed.post(ROLLBACK, {"reason": "what if", "dry_run": True})
    assert r.status_code == 200
    assert r.json()["status"] == "dry_run" and "would move" in r.json()["detail"]
    assert deployed.alias() == "2" and deployed.registry.moves == []
    assert deployed.audit_actions() == ["rollback.requested", "rollback.dry_run"]


def test_a_second_rollback_is_a_noop_not_a_roll_forward(deployed):
    assert deployed.post(ROLLBACK, {"reason": "CTR -10% since v2"}).json()["status"] == "done"
    for body in ({"reason": "again, to be sure"}, {"reason": "explicitly", "to_version": "1"}):
        r = deployed.post(ROLLBACK, body)
        assert r.status_code == 200
        assert r.json()["status"] == "noop" and r.json()["to_version"] == "1"
    assert deployed.alias() == "1"
    assert deployed.registry.moves == [(MODEL, "champion", "1")]


def test_idempotency_key_replays_the_first_answer(deployed):
    key = {"Idempotency-Key": "rb-7f1c"}
    first = deployed.post(ROLLBACK, {"reason": "CTR -10% since v2"}, key)
    again = deployed.post(ROLLBACK, {"reason": "CTR -10% since v2"}, key)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert len(deployed.vigil.store.actions(model=MODEL)) == 1
    assert deployed.registry.moves == [(MODEL, "champion", "1")]

    other = deployed.post(ROLLBACK, {"reason": "a different request"}, key)
    assert other.status_code == 422 and "Idempotency-Key" in other.json()["error"]
    assert len(deployed.vigil.store.actions(model=MODEL)) == 1


def test_a_failed_rollback_is_502_and_the_same_key_can_retry_it(deployed):
    key = {"Idempotency-Key": "rb-retry"}
    deployed.registry.fail_set_alias = "MLflow answered 503"
    r = deployed.post(ROLLBACK, {"reason": "CTR -10% since v2"}, key)
    assert r.status_code == 502
    assert r.json()["status"] == "failed" and "MLflow answered 503" in r.json()["error"]
    assert deployed.alias() == "2"
    assert deployed.audit_actions()[-1] == "rollback.failed"

    deployed.registry.fail_set_alias = None  # the registry is back: the client retries as told
    r = deployed.post(ROLLBACK, {"reason": "CTR -10% since v2"}, key)
    assert r.status_code == 200 and r.json()["status"] == "done"
    assert deployed.alias() == "1"


def test_rollback_during_an_incident_is_attached_to_it(tmp_path, monkeypatch):
    deployed = build(tmp_path, monkeypatch, policy={"rollback": {"enabled": False}})
    deployed.deploy("2", T0 - 3600)
    report = deployed.vigil.run_cycle(MODEL, T0)  # CTR fell after the deploy: critical, no auto-rollback
    assert report.incident_id is not None and report.severity == "critical"
    deployed.post(ROLLBACK, {"reason": "CTR -10% since v2"})
    inc = deployed.client.get(f"/v1/incidents/{report.incident_id}").json()
    refused, done = inc["actions"]
    assert refused["status"] == "refused" and "disabled" in refused["reason"] and refused["actor"] == "vigil"
    assert (done["status"], done["to_version"], done["actor"]) == ("done", "1", "api:admin")


def test_every_incident_answer_shows_its_actions_and_drift_report(tmp_path, monkeypatch):
    """The README promises incidents "with findings, ranked causes, actions": GET one did, but
    the list, and the incident answered by ack and silence, said `actions: []` and
    `drift_report: null` for an incident whose rollback was done and whose report was
    rendered, so a client reading them saw no rollback."""
    deployed = build(tmp_path, monkeypatch, policy={"rollback": {"enabled": False}})
    deployed.deploy("2", T0 - 3600)
    incident_id = deployed.vigil.run_cycle(MODEL, T0).incident_id
    assert deployed.post(ROLLBACK, {"reason": "CTR -10% since v2"}).json()["status"] == "done"
    deployed.vigil.store.save_drift_report(incident_id, "<html>psi 0.31</html>", T0)
    one = deployed.client.get(f"/v1/incidents/{incident_id}").json()
    assert [a["status"] for a in one["actions"]] == ["refused", "done"] and one["drift_report"]
    answers = {"list": deployed.client.get("/v1/incidents").json()["items"][0],
               "ack": deployed.post(f"/v1/incidents/{incident_id}/ack").json(),
               "silence": deployed.post(f"/v1/incidents/{incident_id}/silence",
                                        {"duration_s": 600, "reason": "rolled back"}).json()}
    for where, inc in answers.items():
        assert (inc["actions"], inc["drift_report"]) == (one["actions"], one["drift_report"]), where


# ----------------------------------------------------------------------------- incidents
def test_incidents_list_filter_and_get(api):
    report = api.vigil.run_cycle(MODEL, T0)
    page = api.client.get("/v1/incidents").json()
    listed = page["items"]
    assert [i["id"] for i in listed] == [report.incident_id] and page["total"] == 1 and page["next"] is None
    inc = listed[0]
    assert (inc["model"], inc["status"], inc["severity"]) == (MODEL, "open", "warning")
    ctr = [f for f in inc["findings"] if f["entity"] == "ctr"][0]
    assert ctr["value"] == pytest.approx(-10.0) and ctr["threshold"] == -5.0 and ctr["baseline"] == 0.05

    assert api.client.get("/v1/incidents", params={"status": "resolved"}).json() == {"items": [], "total": 0,
                                                                                      "next": None}
    assert api.client.get("/v1/incidents", params={"status": "open", "model": MODEL}).json()["total"] == 1
    assert api.client.get("/v1/incidents", params={"model": "nope"}).status_code == 404
    got = api.client.get(f"/v1/incidents/{report.incident_id}").json()
    assert got["id"] == report.incident_id and got["drift_report"] is None

    r = api.client.get("/v1/incidents/999")
    assert r.status_code == 404 and "999" in r.json()["error"]


def test_drift_report_is_404_without_one_and_html_with_one(api):
    incident_id = api.vigil.run_cycle(MODEL, T0).incident_id
    r = api.client.get(f"/v1/incidents/{incident_id}/drift-report")
    assert r.status_code == 404 and "no drift report" in r.json()["error"]
    assert api.client.get("/v1/incidents/999/drift-report").status_code == 404

    with api.vigil.store.tx() as s:  # the incident's story gains a drift finding: its report is queued
        row = s.get(IncidentRow, incident_id)
        row.findings = [*row.findings, {"kind": "feature_drift", "entity": "user_age", "value": 0.31}]
    r = api.client.get(f"/v1/incidents/{incident_id}/drift-report")
    assert r.status_code == 404 and "not rendered yet" in r.json()["error"] and r.headers["Retry-After"] == "60"

    api.vigil.store.save_drift_report(incident_id, "<html><body>psi 0.31 user_age</body></html>", T0)
    r = api.client.get(f"/v1/incidents/{incident_id}/drift-report")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "psi 0.31" in r.text
    assert api.client.get(f"/v1/incidents/{incident_id}").json()["drift_report"].endswith("/drift-report")


def test_ack_and_silence_need_the_token_and_are_audited(api):
    incident_id = api.vigil.run_cycle(MODEL, T0).incident_id
    ack = f"/v1/incidents/{incident_id}/ack"
    silence = f"/v1/incidents/{incident_id}/silence"
    assert api.anon.post(ack).status_code == 401
    assert api.anon.post(silence, json={"duration_s": 3600, "reason": "known"}).status_code == 401
    assert api.anon.post(ack, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert api.audit_actions() == []

    r = api.post(ack)
    assert r.status_code == 200 and r.json()["acknowledged_by"] == "api:admin"
    r = api.post(silence, {"duration_s": 3600, "reason": "fix deploying"})
    assert r.status_code == 200
    assert r.json()["silenced_until"] == pytest.approx(time.time() + 3600, abs=60)
    row = api.vigil.store.incident(incident_id)
    assert row.acknowledged_by == r.json()["acknowledged_by"] and row.silenced_until is not None

    audit = api.client.get("/v1/audit").json()
    assert [e["action"] for e in audit["items"]] == ["incident.ack", "incident.silence"]
    assert audit["items"][1]["detail"]["reason"] == "fix deploying"
    assert audit["chain"]["ok"]

    r = api.post(silence, {"duration_s": -5, "reason": "oops"})
    assert r.status_code == 422 and r.json()["fields"][0]["field"] == "duration_s"
    assert api.post("/v1/incidents/999/ack").status_code == 404


# ----------------------------------------------------------------------------- samples
def samples_api(tmp_path, monkeypatch) -> Api:
    m = model_config(features=["user_age", {"name": "device", "type": "categorical"}], prediction_column="score")
    return build(tmp_path, monkeypatch, models=[m])


def test_samples_are_accepted_and_stored(tmp_path, monkeypatch):
    api = samples_api(tmp_path, monkeypatch)
    records = [{"timestamp": "2027-01-15T07:59:00Z", "user_age": 31, "device": "ios", "score": 0.4},
               {"timestamp": T0, "user_age": None, "device": "web", "score": 0.7}]
    r = api.post("/v1/samples", {"model": MODEL, "records": records})
    assert r.status_code == 202 and r.json() == {"accepted": 2, "model": MODEL}
    stored = api.vigil.store.samples(MODEL, T0 - 3600, T0)
    assert [ts for ts, _ in stored] == [T0 - 60, T0]
    assert stored[0][1] == {"user_age": 31, "device": "ios", "score": 0.4}


def test_a_bad_record_rejects_the_whole_request_naming_each_field(tmp_path, monkeypatch):
    api = samples_api(tmp_path, monkeypatch)
    good = {"timestamp": T0 - 120, "user_age": 40, "device": "ios", "score": 0.5}
    assert api.post("/v1/samples", {"model": MODEL, "records": [good]}).status_code == 202

    bad = [good,
           {"user_age": 22, "score": 0.1},  # no timestamp
           {"timestamp": T0, "user_age": "old", "score": 0.2},  # non-numeric feature
           {"timestamp": None, "user_age": 50, "score": 0.3},  # null timestamp is not the epoch
           {"timestamp": "yesterday", "user_age": 50, "score": True}]
    r = api.post("/v1/samples", {"model": MODEL, "records": bad})
    assert r.status_code == 422
    fields = [f["field"] for f in r.json()["fields"]]
    assert fields == ["records[1].timestamp", "records[2].user_age", "records[3].timestamp",
                      "records[4].timestamp", "records[4].score"]
    assert "records[1].timestamp" in r.json()["error"] and "nothing stored" in r.json()["error"]
    stored = api.vigil.store.samples(MODEL, 0, T0 + 3600)
    assert [ts for ts, _ in stored] == [T0 - 120], "only the earlier accepted sample is kept"


def test_samples_need_a_known_model_and_the_token(tmp_path, monkeypatch):
    api = samples_api(tmp_path, monkeypatch)
    body = {"model": "nope", "records": [{"timestamp": T0}]}
    assert api.post("/v1/samples", body).status_code == 404
    assert api.anon.post("/v1/samples", json={**body, "model": MODEL}).status_code == 401
    assert api.vigil.store.samples(MODEL, 0, T0 + 1) == []


# ----------------------------------------------------------------------------- never a 500
@pytest.mark.parametrize("method, url, raw", [
    ("post", ROLLBACK, b"{"),
    ("post", ROLLBACK, b"null"),
    ("post", ROLLBACK, b"[]"),
    ("post", ROLLBACK, b'"rollback please"'),
    ("post", ROLLBACK, b'{"reason": 5}'),
    ("post", ROLLBACK, b'{"reason": ["a", "b", "c"]}'),
    ("post", ROLLBACK, b'{"reason": "ctr dropped", "dry_run": "maybe"}'),
    ("post", ROLLBACK, b"\xff\xfe not utf-8"),
    ("post", "/v1/samples", b'{"model": "recommender", "records": "all of them"}'),
    ("post", "/v1/samples", b'{"model": "recommender", "records": [1, 2]}'),
    ("post", "/v1/samples", b'{"model": "recommender", "records": []}'),
    ("post", "/v1/samples", b'{"model": "recommender", "records": [{"timestamp": {"at": 1}}]}'),
    ("post", "/v1/samples", b'{"model": "recommender", "records": [{"timestamp": [1, 2]}]}'),
    ("post", "/v1/samples", b'{"model": 7, "records": [{"timestamp": 1}]}'),
    ("post", "/v1/incidents/1/silence", b'{"duration_s": "forever", "reason": "xyz"}'),
    ("post", "/v1/incidents/abc/ack", b""),
    ("get", "/v1/incidents/0", b""),
    ("get", "/v1/incidents?limit=0", b""),
    ("get", "/v1/incidents?status=bogus", b""),
    ("get", "/v1/audit?since_seq=-1", b""),
])
def test_malformed_requests_are_4xx_never_500(api, method, url, raw):
    headers = {**AUTH, "Content-Type": "application/json"}
    r = api.client.request(method.upper(), url, content=raw or None, headers=headers)
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    assert r.json()["error"]
    assert api.alias() == "1"


def test_an_oversized_idempotency_key_is_422_not_500(deployed):
    r = deployed.post(ROLLBACK, {"reason": "ctr dropped"}, {"Idempotency-Key": "k" * 500})
    assert r.status_code == 422 and "idempotency-key" in r.json()["error"].lower()
    assert deployed.alias() == "2"


def test_a_drift_report_never_rendered_for_a_long_resolved_incident_is_not_promised(api):
    """The report was queued and dropped (the daemon restarted or reloaded before the gap after a
    sweep), and the incident resolved: nothing asks for it again, yet the link kept answering
    'not rendered yet ... try again in a minute' with Retry-After, for ever."""
    from alerts.lifecycle import IncidentStatus

    incident_id = api.vigil.run_cycle(MODEL, T0).incident_id
    with api.vigil.store.tx() as s:
        row = s.get(IncidentRow, incident_id)
        row.findings = [*row.findings, {"kind": "feature_drift", "entity": "user_age", "value": 0.31}]
        row.status, row.resolved_at = IncidentStatus.RESOLVED, api.vigil.now() - 2 * 3600
    r = api.client.get(f"/v1/incidents/{incident_id}/drift-report")
    assert r.status_code == 404 and "Retry-After" not in r.headers, r.headers
    assert "was not rendered" in r.json()["error"]
