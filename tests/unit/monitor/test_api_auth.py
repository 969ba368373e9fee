"""Identities and roles: named tokens (stored hashed, by file or by ${ENV}), reads need a
viewer, writes an operator (force an admin, samples ingest), the audit names the token,
and the token is checked from the headers before a byte of the body is read."""
from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Any

import pytest
from fastapi.routing import APIRoute

from monitor.api.auth import OPEN_PATHS, SIGNED_PATHS
from monitor.api.deps import RoleCheck
from monitor.config import ConfigError
from monitor.identities import Role, load_token_table
from tests.helpers_vigil import make_config, make_vigil, model_config
from tests.unit.monitor.test_api import MODEL, ROLLBACK, T0, Api, build

TOKENS = {"vera": "vera-viewer-token-5d1e0c", "olga": "olga-operator-token-93b7aa", "ivan": "ivan-ingest-token-0f4c21"}


def sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def bearer(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[name]}"}


def named(tmp_path, monkeypatch, **config: Any) -> Api:
    """The old admin token plus a viewer and an operator by hash and an ingest token by file."""
    (tmp_path / "ivan.token").write_text(TOKENS["ivan"] + "\n")  # a mounted secret ends with a newline
    api = build(tmp_path, monkeypatch, api={"tokens": [
        {"name": "vera", "role": "viewer", "token_sha256": sha(TOKENS["vera"])},
        {"name": "olga", "role": "operator", "token_sha256": sha(TOKENS["olga"]).upper()},
        {"name": "ivan", "role": "ingest", "token_file": "ivan.token"}]}, **config)
    api.deploy("2", time.time() - 3600)
    return api


READS = ["/v1/incidents", "/v1/incidents/1", "/v1/incidents/1/drift-report", "/v1/audit", "/v1/nowhere"]


@pytest.mark.parametrize("url", READS)
def test_reads_without_a_token_are_401(tmp_path, monkeypatch, url):
    api = named(tmp_path, monkeypatch)
    api.vigil.run_cycle(MODEL, T0)
    r = api.anon.get(url)
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert r.json() == {"error": "missing bearer token (Authorization: Bearer <token>)"}
    assert api.anon.get(url, headers={"Authorization": "Bearer guessed"}).status_code == 401


@pytest.mark.parametrize("url", ["/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/"])
def test_health_metrics_and_docs_stay_open(tmp_path, monkeypatch, url):
    assert named(tmp_path, monkeypatch).anon.get(url).status_code == 200


def test_a_viewer_reads_but_cannot_write(tmp_path, monkeypatch):
    api = named(tmp_path, monkeypatch)
    incident_id = api.vigil.run_cycle(MODEL, T0).incident_id
    assert api.anon.get("/v1/incidents", headers=bearer("vera")).json()["items"][0]["id"] == incident_id
    assert api.anon.get("/v1/audit", headers=bearer("vera")).status_code == 200
    r = api.anon.post(f"/v1/incidents/{incident_id}/ack", headers=bearer("vera"))
    assert r.status_code == 403
    assert r.json() == {"error": "this needs role operator or admin; token 'vera' has role viewer"}
    assert api.anon.post(ROLLBACK, json={"reason": "ctr dropped"}, headers=bearer("vera")).status_code == 403
    samples = {"model": MODEL, "records": [{"timestamp": T0}]}
    assert api.anon.post("/v1/samples", json=samples, headers=bearer("vera")).status_code == 403
    assert api.vigil.store.incident(incident_id).acknowledged_by is None and api.alias() == "2"


def test_an_operator_acts_under_its_name_but_cannot_force(tmp_path, monkeypatch):
    api = named(tmp_path, monkeypatch)
    incident_id = api.vigil.run_cycle(MODEL, T0).incident_id
    r = api.anon.post(f"/v1/incidents/{incident_id}/ack", headers=bearer("olga"))
    assert r.status_code == 200 and r.json()["acknowledged_by"] == "api:olga"
    r = api.anon.post(ROLLBACK, json={"reason": "ctr dropped", "to_version": "2", "force": True},
                      headers=bearer("olga"))
    assert r.status_code == 403 and r.json()["error"] == "force needs role admin; token 'olga' has role operator"
    r = api.anon.post(ROLLBACK, json={"reason": "CTR -10% since v2"}, headers=bearer("olga"))
    assert r.status_code == 200 and r.json()["actor"] == "api:olga" and api.alias() == "1"
    actors = {(e["action"], e["actor"]) for e in api.client.get("/v1/audit").json()["items"]}
    assert {("incident.ack", "api:olga"), ("rollback.requested", "api:olga"), ("rollback.done", "api:olga")} <= actors
    assert not any(TOKENS["olga"] in str(a) or sha(TOKENS["olga"]) in str(a) for a in actors)


def test_the_old_api_token_is_an_admin_named_admin(tmp_path, monkeypatch):
    api = build(tmp_path, monkeypatch)  # only `api.token: ${VIGIL_TEST_TOKEN}`, as configs before named tokens
    api.deploy("2", time.time() - 3600)
    assert api.client.get("/v1/incidents").status_code == 200
    r = api.client.post(ROLLBACK, json={"reason": "the blamed one, on purpose", "to_version": "2", "force": True})
    assert r.status_code == 200 and r.json()["actor"] == "api:admin"


def test_an_ingest_token_posts_samples_and_nothing_else(tmp_path, monkeypatch):
    api = named(tmp_path, monkeypatch)
    r = api.anon.post("/v1/samples", json={"model": MODEL, "records": [{"timestamp": T0}]}, headers=bearer("ivan"))
    assert r.status_code == 202
    r = api.anon.get("/v1/incidents", headers=bearer("ivan"))
    assert r.status_code == 403 and "needs role viewer, operator or admin" in r.json()["error"]


def test_every_route_but_the_open_ones_names_a_role():
    """A new route without a role dependency would be served to any token holder: refuse it
    here. A role dependency declares the bearer scheme, so the OpenAPI document shows it."""
    from monitor.api import audit, incidents, rollback, samples

    def roles(dependant: Any) -> list[Role]:
        found = [d.call.role for d in dependant.dependencies if isinstance(d.call, RoleCheck)]
        return found + [r for d in dependant.dependencies for r in roles(d)]

    routes = [r for m in (audit, incidents, rollback, samples) for r in m.router.routes if isinstance(r, APIRoute)]
    assert len(routes) == 9 and all(roles(r.dependant) for r in routes)

    from monitor.api.app import create_app

    paths = create_app(None).openapi()["paths"]  # type: ignore[arg-type]  # routes only, never called
    unguarded = [f"{method} {path}" for path, ops in paths.items() for method, op in ops.items()
                 if path not in OPEN_PATHS | SIGNED_PATHS and not op.get("security")]
    assert len(paths) > 8 and unguarded == []


# ----------------------------------------------------------------------------- before the body
def test_the_token_is_checked_without_reading_the_body(tmp_path, monkeypatch):
    """At the ASGI level: an unauthenticated request is answered with `receive` never called."""
    api = named(tmp_path, monkeypatch)
    calls: list[str] = []
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        calls.append("receive")
        return {"type": "http.request", "body": b"{" * 1024, "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    for headers in ([], [(b"authorization", b"Bearer not-a-token")]):
        asyncio.run(api.app(asgi_scope("POST", "/v1/samples", [(b"content-length", b"52428800"), *headers]),
                            receive, send))
    assert calls == [], "the body was never read"
    assert [m["status"] for m in sent if m["type"] == "http.response.start"] == [401, 401]
    assert api.vigil.store.samples(MODEL, 0, T0 + 1) == []


def asgi_scope(method: str, path: str, headers: list[tuple[bytes, bytes]], root_path: str = "") -> dict[str, Any]:
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
            "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": root_path, "headers": headers,
            "client": ("127.0.0.1", 5), "server": ("127.0.0.1", 8080)}


def test_behind_a_proxy_prefix_the_same_paths_are_open(tmp_path, monkeypatch):
    api = named(tmp_path, monkeypatch)
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    for path in ("/vigil/healthz", "/vigil/v1/incidents", "/vigilant/healthz"):
        asyncio.run(api.app(asgi_scope("GET", path, [], root_path="/vigil"), receive, send))
    assert statuses == [200, 401, 401]


# ----------------------------------------------------------------------------- configuration
def test_tokens_from_a_file_of_lines_or_yaml_and_from_the_environment(tmp_path, monkeypatch):
    (tmp_path / "tokens.txt").write_text(f"# name role sha256\nvera viewer {sha(TOKENS['vera'])}\n\n"
                                         f"olga operator {sha(TOKENS['olga'])}  # on call\n")
    monkeypatch.setenv("IVAN_TOKEN", TOKENS["ivan"])
    cfg = make_config(tmp_path, api={"tokens_file": "tokens.txt",
                                     "tokens": [{"name": "ivan", "role": "ingest", "token": "${IVAN_TOKEN}"}]})
    table = load_token_table(cfg)
    assert {n: (table.resolve(t).name, table.resolve(t).role) for n, t in TOKENS.items()} == {
        "vera": ("vera", "viewer"), "olga": ("olga", "operator"), "ivan": ("ivan", "ingest")}
    assert table.resolve("olga") is None
    (tmp_path / "tokens.yaml").write_text(f"tokens:\n  - {{name: vera, role: viewer, token_sha256: "
                                          f"{sha(TOKENS['vera'])}}}\n")
    table = load_token_table(make_config(tmp_path, api={"tokens_file": "tokens.yaml"}))
    assert table.resolve(TOKENS["vera"]).name == "vera"


def test_unresolvable_tokens_are_config_errors_naming_them(tmp_path, monkeypatch):
    monkeypatch.delenv("NOT_SET_TOKEN", raising=False)
    (tmp_path / "tokens.txt").write_text("vera viewer nothex\nolga\n")
    with pytest.raises(ConfigError) as unset:  # a reference is resolved when the file is loaded
        make_config(tmp_path, api={"tokens": [{"name": "env", "role": "viewer", "token": "${NOT_SET_TOKEN}"}]})
    assert "environment variable NOT_SET_TOKEN is not set" in dict(unset.value.errors)["api.tokens[0](env).token"]
    cfg = make_config(tmp_path, api={"tokens_file": "tokens.txt", "tokens": [
        {"name": "ci", "role": "viewer", "token_file": "missing.token"}]})
    with pytest.raises(ConfigError) as e:
        load_token_table(cfg)
    errors = dict(e.value.errors)
    assert "cannot read" in errors["api.tokens[0](ci)"] and "missing.token" in errors["api.tokens[0](ci)"]
    assert "token_sha256" in errors[f"{tmp_path / 'tokens.txt'}:1"]
    assert "name role sha256" in errors[f"{tmp_path / 'tokens.txt'}:2"]


@pytest.mark.parametrize("api, words", [
    ({"tokens": [{"name": "ci", "role": "viewer", "token": "plain-text-token"}]}, "never written in the file"),
    ({"tokens": [{"name": "ci", "role": "viewer"}]}, "exactly one of"),
    ({"tokens": [{"name": "ci", "role": "root", "token_sha256": "0" * 64}]}, "viewer"),
    ({"token": "${T}", "tokens": [{"name": "admin", "role": "viewer", "token_sha256": "0" * 64}]}, "unique"),
])
def test_token_config_mistakes_are_refused(tmp_path, monkeypatch, api, words):
    monkeypatch.setenv("T", "x" * 20)
    with pytest.raises(ConfigError) as e:
        make_config(tmp_path, api=api)
    assert words in str(e.value) and "plain-text-token" not in str(e.value)


def test_vigil_token_hash_and_check_config(tmp_path, monkeypatch, capsys):
    import io

    import yaml

    from monitor.cli import main

    monkeypatch.setattr("sys.stdin", io.StringIO(TOKENS["olga"] + "\n"))
    assert main(["token", "hash"]) == 0
    assert capsys.readouterr().out.strip() == sha(TOKENS["olga"])
    monkeypatch.setattr("sys.stdin", io.StringIO(TOKENS["olga"]))
    assert main(["token", "hash", "--name", "olga", "--role", "operator"]) == 0
    assert capsys.readouterr().out.strip() == f"olga operator {sha(TOKENS['olga'])}"

    path = tmp_path / "vigil.yaml"
    path.write_text(yaml.safe_dump({"api": {"tokens": [{"name": "ci", "role": "viewer", "token_file": "nope"}]},
                                    "models": [model_config()]}))
    assert main(["check-config", str(path)]) == 1
    assert "api.tokens[0](ci)" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["olga smith", "_olga", "o" * 65, "olga\tadmin"])
def test_vigil_token_hash_refuses_a_name_the_tokens_file_would_refuse(name, monkeypatch, capsys):
    """The printed line goes into a tokens file; a name the file refuses would fail the next
    start or reload, so it is refused here, naming the option and what it takes."""
    import io

    from monitor.cli import main

    monkeypatch.setattr("sys.stdin", io.StringIO(TOKENS["olga"]))
    assert main(["token", "hash", "--name", name, "--role", "operator"]) == 64
    out = capsys.readouterr()
    assert out.out == "" and "--name" in out.err and "letters, digits" in out.err


def test_no_configured_token_is_503_for_every_protected_path(tmp_path, monkeypatch):
    api = build(tmp_path, monkeypatch, token=None)
    r = api.anon.get("/v1/incidents", headers={"Authorization": "Bearer anything"})
    assert r.status_code == 503 and "api.tokens" in r.json()["error"]
    assert api.anon.get("/healthz").status_code == 200


def test_a_reload_with_new_tokens_takes_effect(tmp_path, monkeypatch):
    """SIGHUP swaps the app's Vigil (monitor/daemon.py); the token table follows its config."""
    api = named(tmp_path, monkeypatch)
    assert api.anon.get("/v1/incidents", headers=bearer("vera")).status_code == 200
    fresh = make_config(tmp_path, api={"token": "${VIGIL_TEST_TOKEN}"})  # vera's token was removed
    api.app.state.vigil = make_vigil(fresh, registry=api.registry, notifiers={})
    assert api.anon.get("/v1/incidents", headers=bearer("vera")).status_code == 401
    assert api.client.get("/v1/incidents").status_code == 200


def test_one_token_under_two_names_is_a_config_error_not_the_last_one_winning(tmp_path, monkeypatch):
    """A tokens line copied for a new person with the hash left unchanged: the one token
    then resolved to whichever entry came last, so alice's calls ran as ci (a viewer) or
    ci's with alice's operator role, and the audit log named the wrong person."""
    digest = sha(TOKENS["olga"])
    cfg = make_config(tmp_path, api={"tokens": [
        {"name": "alice", "role": "operator", "token_sha256": digest},
        {"name": "ci", "role": "viewer", "token_sha256": digest.upper()}]})
    with pytest.raises(ConfigError) as e:
        load_token_table(cfg)
    text = str(e.value)
    assert "alice" in text and "ci" in text and "same token" in text and digest not in text.lower()
