"""Issue 12, limits before work: bodies over `api.max_body_bytes` (samples: their own
limit) are a 413 before they are read or as soon as they pass the limit, and writes are
rate limited per client (429 with Retry-After). On the old code there was no limit: a
50 MB body was read whole, parsed, then refused (+280 MB server memory)."""
from __future__ import annotations

import asyncio
from typing import Any

import pytest

from monitor.api.app import create_app
from monitor.api.limits import TokenBuckets, client_key
from tests.helpers_vigil import MODEL, T0, incident_prometheus, make_config, make_vigil, serving_registry
from tests.unit.monitor.test_api import AUTH, ROLLBACK, TOKEN, Api

CHUNK = 65536  # what uvicorn hands an app per message


def limited(tmp_path: Any, monkeypatch: Any, **api: Any) -> Api:
    """test_api's Api, with small body limits (4 KiB; samples 64 KiB) and `api` overrides."""
    monkeypatch.setenv("VIGIL_TEST_TOKEN", TOKEN)
    cfg = make_config(tmp_path, api={"token": "${VIGIL_TEST_TOKEN}", "max_body_bytes": 4096,
                                     "max_samples_body_bytes": 65536, **api})
    registry = serving_registry(versions=("1", "2", "3"))
    return Api(make_vigil(cfg, prometheus=incident_prometheus(), registry=registry, notifiers={}), registry)


def test_a_declared_body_over_the_limit_is_413_before_anything_runs(tmp_path, monkeypatch):
    api = limited(tmp_path, monkeypatch)
    r = api.client.post(ROLLBACK, content=b"x" * 5000, headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code == 413 and "over the limit of 4096 bytes" in r.json()["error"]
    assert r.headers["connection"] == "close"
    # Without a token too: the size is refused before the route (and its token check) runs.
    assert api.client.post(ROLLBACK, content=b"x" * 5000).status_code == 413
    assert api.audit_actions() == []


def test_samples_have_their_own_larger_limit(tmp_path, monkeypatch):
    api = limited(tmp_path, monkeypatch)
    records = [{"timestamp": T0, "padding": "p" * 40} for _ in range(100)]  # ~ 6 KB: over 4096, under 65536
    r = api.post("/v1/samples", {"model": MODEL, "records": records})
    assert r.status_code == 202, r.text
    r = api.post("/v1/samples", {"model": MODEL, "records": records * 20})
    assert r.status_code == 413 and "65536" in r.json()["error"]


def asgi_post(app: Any, path: str, chunks: int, headers: list[tuple[bytes, bytes]]) -> tuple[int, bytes, int]:
    """POST `chunks` x 64 KiB streamed without Content-Length; (status, body, chunks the app pulled)."""
    pulled = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        if pulled >= chunks:
            return {"type": "http.disconnect"}
        pulled += 1
        return {"type": "http.request", "body": b"[" * CHUNK, "more_body": pulled < chunks}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(b"content-type", b"application/json"), *headers], "client": ("127.0.0.1", 5000),
             "server": ("127.0.0.1", 8080)}
    asyncio.run(app(scope, receive, send))
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], body, pulled


@pytest.mark.parametrize("path", [ROLLBACK, "/v1/samples"])
def test_a_streamed_body_is_refused_as_soon_as_it_passes_the_limit_not_read_to_the_end(tmp_path, monkeypatch, path):
    api = limited(tmp_path, monkeypatch)
    app = create_app(api.vigil)
    auth = [(b"authorization", AUTH["Authorization"].encode())]
    status, body, pulled = asgi_post(app, path, chunks=800, headers=auth)  # 50 MiB offered
    assert status == 413 and b'"error"' in body
    limit = 65536 if path == "/v1/samples" else 4096
    assert pulled == limit // CHUNK + 1, "read until just past the limit, then stopped"


def test_writes_beyond_the_rate_are_429_with_retry_after_per_client(tmp_path, monkeypatch):
    api = limited(tmp_path, monkeypatch, rate_limit={"per_second": 0.01, "burst": 3})
    ack = "/v1/incidents/999/ack"
    assert [api.post(ack).status_code for _ in range(3)] == [404, 404, 404]
    r = api.post(ack)
    assert r.status_code == 429 and "api.rate_limit" in r.json()["error"]
    assert 1 <= int(r.headers["retry-after"]) <= 100
    assert api.anon.post(ack).status_code == 401, "a client without a token is turned away by auth, not by the bucket"
    assert api.client.get("/v1/incidents", headers=AUTH).status_code == 200, "reads are not rate limited"


def test_no_rate_limit_when_set_to_null(tmp_path, monkeypatch):
    api = limited(tmp_path, monkeypatch, rate_limit=None)
    assert {api.post("/v1/incidents/999/ack").status_code for _ in range(30)} == {404}


def test_token_buckets_refill_at_the_rate_and_forget_the_oldest_clients():
    now = [0.0]
    buckets = TokenBuckets(clock=lambda: now[0])
    assert [buckets.take("a", 2.0, 2) for _ in range(3)] == [0.0, 0.0, 0.5]
    now[0] = 0.5
    assert buckets.take("a", 2.0, 2) == 0.0 and buckets.take("a", 2.0, 2) == pytest.approx(0.5)
    assert buckets.take("b", 2.0, 2) == 0.0, "each client its own bucket"


def test_the_client_is_the_token_fingerprint_else_the_address():
    with_token = {"headers": [(b"authorization", b"Bearer s3cret")], "client": ("10.0.0.1", 1)}
    assert client_key(with_token).startswith("token:") and "s3cret" not in client_key(with_token)
    assert client_key({"headers": [], "client": ("10.0.0.1", 1)}) == "addr:10.0.0.1"


def test_the_write_routes_document_413_and_429(tmp_path, monkeypatch):
    paths = limited(tmp_path, monkeypatch).client.get("/openapi.json").json()["paths"]
    for path in ("/v1/models/{name}/rollback", "/v1/samples", "/v1/incidents/{incident_id}/ack",
                 "/v1/incidents/{incident_id}/silence"):
        responses = paths[path]["post"]["responses"]
        assert {"413", "429"} <= set(responses), path
        assert "Retry-After" in responses["429"]["headers"]


def test_a_made_up_bearer_token_on_the_open_slack_path_does_not_escape_the_rate(tmp_path, monkeypatch):
    """Slack's callback is open to anyone (its signature is checked by the route), so the
    token middleware never looks at a bearer header there: keyed by a header the client
    makes up, every request had a fresh bucket and the only unauthenticated write was
    never limited (and a flood of made-up keys evicted every real client's bucket)."""
    api = limited(tmp_path, monkeypatch, rate_limit={"per_second": 0.01, "burst": 2})
    codes = [api.anon.post("/v1/slack/actions", content=b"payload=x",
                           headers={"Authorization": f"Bearer made-up-{i}"}).status_code for i in range(4)]
    assert codes[:2] == [503, 503], "under the rate the route answers (no signing secret here)"
    assert codes[2:] == [429, 429], "made-up tokens are one client: its address"


def test_behind_a_proxy_prefix_samples_keep_their_own_larger_limit(tmp_path, monkeypatch):
    """The token check and the router strip the `root_path` a proxy or a parent app mounts
    the API under; the size limit compared the full path, so /vigil/v1/samples got the
    small api.max_body_bytes and a normal batch was a 413."""
    import json

    api = limited(tmp_path, monkeypatch)
    app = create_app(api.vigil)
    records = [{"timestamp": T0, "padding": "p" * 40} for _ in range(100)]  # ~ 6 KB: over 4096, under 65536
    body = json.dumps({"model": MODEL, "records": records}).encode()
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/vigil/v1/samples", "raw_path": b"/vigil/v1/samples", "query_string": b"",
             "root_path": "/vigil", "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8080),
             "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                         (b"authorization", AUTH["Authorization"].encode())]}
    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 202, b"".join(m.get("body", b"") for m in sent[1:])
