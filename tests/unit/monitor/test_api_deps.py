"""The API's shared parts alone: the token check (middleware and role), the 404s for a path that names nothing,
the error bodies and readiness, over a stub Vigil (a real config, a store that answers
only what the route under test asks)."""
from __future__ import annotations

import re
import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi.testclient import TestClient

from monitor.api.app import create_app
from monitor.api.rollback import KeyedLocks
from monitor.metrics import VigilMetrics
from tests.helpers_vigil import MODEL, make_config, model_config

TOKEN = "vigil-deps-test-token-41aa"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class Store:
    """No incidents; records which ones were asked for. `broken`: every query fails."""

    def __init__(self, broken: bool = False) -> None:
        self.broken = broken
        self.asked: list[int] = []

    def incident(self, incident_id: int) -> None:
        self.asked.append(incident_id)

    def count_incidents(self, **_: Any) -> int:
        return 0

    def outbox_counts(self) -> dict[str, int]:
        if self.broken:
            raise RuntimeError("database is locked")
        return {"pending": 0}

    def audit_entries(self, **_: Any) -> list[Any]:
        raise RuntimeError("disk I/O error in /var/lib/vigil/vigil.db")


def client(tmp_path, monkeypatch, *, token: str | None = TOKEN, store: Store | None = None) -> TestClient:
    if token is None:
        monkeypatch.delenv("VIGIL_DEPS_TOKEN", raising=False)
    else:
        monkeypatch.setenv("VIGIL_DEPS_TOKEN", token)
    cfg = make_config(tmp_path, api={"token": "${VIGIL_DEPS_TOKEN:-}"}, models=[model_config(), model_config("fraud")])
    vigil = SimpleNamespace(config=cfg, store=store or Store(), readiness=dict, metrics=VigilMetrics(), now=time.time)
    return TestClient(create_app(vigil), raise_server_exceptions=False)


@pytest.mark.parametrize("authorization", [None, "", "Basic dXNlcjpwYXNz", "Bearer"])
def test_a_write_without_a_bearer_token_is_401_with_a_challenge(tmp_path, monkeypatch, authorization):
    headers = {} if authorization is None else {"Authorization": authorization}
    r = client(tmp_path, monkeypatch).post("/v1/incidents/1/ack", headers=headers)
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert r.json() == {"error": "missing bearer token (Authorization: Bearer <token>)"}


def test_a_wrong_token_is_401_and_no_token_configured_is_503(tmp_path, monkeypatch):
    r = client(tmp_path, monkeypatch).post("/v1/incidents/1/ack", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401 and r.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert r.json() == {"error": "invalid bearer token: it matches no configured API token"}
    r = client(tmp_path, monkeypatch, token=None).post("/v1/incidents/1/ack", headers=AUTH)
    assert r.status_code == 503 and "api.token" in r.json()["error"]


def test_the_token_is_checked_before_the_path_is_looked_up(tmp_path, monkeypatch):
    store = Store()
    c = client(tmp_path, monkeypatch, store=store)
    assert c.post("/v1/incidents/7/ack").status_code == 401
    assert c.post("/v1/models/nope/rollback", json={"reason": "ctr dropped"}).status_code == 401
    assert store.asked == [], "a caller without the token learns nothing about what exists"


@pytest.mark.parametrize("method, url", [("get", "/v1/incidents/7"), ("get", "/v1/incidents/7/drift-report"),
                                         ("post", "/v1/incidents/7/ack")])
def test_an_unknown_incident_is_404_naming_it(tmp_path, monkeypatch, method, url):
    r = client(tmp_path, monkeypatch).request(method.upper(), url, headers=AUTH)
    assert r.status_code == 404 and r.json() == {"error": "incident 7 not found"}


def test_an_unknown_incident_is_404_even_with_a_bad_body(tmp_path, monkeypatch):
    """The path is resolved before the body is read (a dependency), as in every route."""
    r = client(tmp_path, monkeypatch).post("/v1/incidents/7/silence", json={"duration_s": -1}, headers=AUTH)
    assert r.status_code == 404 and r.json() == {"error": "incident 7 not found"}


def test_an_unknown_model_is_404_listing_the_monitored_ones(tmp_path, monkeypatch):
    c = client(tmp_path, monkeypatch)
    expected = {"error": f"unknown model 'nope'; monitored models: {MODEL}, fraud"}
    r = c.post("/v1/models/nope/rollback", json={"reason": "ctr dropped"}, headers=AUTH)
    assert r.status_code == 404 and r.json() == expected
    r = c.get("/v1/incidents", params={"model": "nope"}, headers=AUTH)
    assert r.status_code == 404 and r.json() == expected


def test_an_unexpected_error_is_a_500_with_a_request_id_and_no_details(tmp_path, monkeypatch):
    r = client(tmp_path, monkeypatch).get("/v1/audit", headers=AUTH)
    assert r.status_code == 500
    body = r.json()
    assert body["error"] == "internal error" and re.fullmatch(r"[0-9a-f]{12}", body["request_id"])
    assert "disk" not in r.text and "Traceback" not in r.text


def test_readyz_is_503_when_the_store_is_dead(tmp_path, monkeypatch):
    r = client(tmp_path, monkeypatch, store=Store(broken=True)).get("/readyz")
    assert r.status_code == 503
    assert r.json() == {"status": "not ready", "reasons": ["store down: database is locked"],
                        "store": "down: database is locked", "sources": {}, "outbox": {},
                        "cycles": {"problems": [], "models": {}}}
    r = client(tmp_path, monkeypatch).get("/readyz")
    assert r.status_code == 200 and r.json()["outbox"] == {"pending": 0} and r.json()["status"] == "ready"


def test_keyed_locks_give_one_lock_per_key():
    locks = KeyedLocks()
    assert locks("rollback:a") is locks("rollback:a")
    assert locks("rollback:a") is not locks("rollback:b")
    assert isinstance(locks("rollback:a"), type(threading.Lock()))
