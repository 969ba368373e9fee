"""The OpenAPI document tells the truth (issue 12): the error body the API sends, every
status the middleware may answer, the bearer scheme, /metrics as text, and /docs that
loads with no CDN."""
from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from monitor.api.auth import OPEN_PATHS
from monitor.api.openapi import EVERY_ROUTE, PROTECTED_ROUTE
from tests.unit.monitor.test_api import Api, build

ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}


@pytest.fixture
def api(tmp_path, monkeypatch) -> Api:
    return build(tmp_path, monkeypatch)


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method.upper(), path, op) for path, item in doc["paths"].items() for method, op in item.items()]


def test_every_error_is_documented_with_the_body_the_api_sends(api: Api):
    doc = api.anon.get("/openapi.json").json()
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    assert set(doc["components"]["schemas"]["ErrorBody"]["properties"]) == {"error", "fields", "request_id"}
    for method, path, op in operations(doc):
        for status, response in op["responses"].items():
            if status[0] in "45" and (path, status) not in {("/readyz", "503"), ("/v1/models/{name}/rollback", "502")}:
                assert response["content"]["application/json"]["schema"] == ERROR_REF, f"{method} {path} {status}"
        expected = EVERY_ROUTE + (() if path in ("/healthz", "/readyz", "/metrics", "/v1/slack/actions")
                                  else PROTECTED_ROUTE)
        assert {str(c) for c in expected} <= set(op["responses"]), f"{method} {path}"


def test_route_statuses_are_documented(api: Api):
    paths = api.anon.get("/openapi.json").json()["paths"]
    assert {"202", "404", "409", "422", "502"} <= set(paths["/v1/models/{name}/rollback"]["post"]["responses"])
    assert {"404", "422"} <= set(paths["/v1/incidents/{incident_id}/ack"]["post"]["responses"])
    assert {"400", "404", "422"} <= set(paths["/v1/samples"]["post"]["responses"])
    ready = paths["/readyz"]["get"]["responses"]["503"]["content"]["application/json"]["schema"]
    assert ready == {"$ref": "#/components/schemas/Readiness"}
    metrics = paths["/metrics"]["get"]["responses"]["200"]["content"]
    assert list(metrics) == ["text/plain"]
    assert api.anon.get("/metrics").headers["content-type"].startswith("text/plain; version=")


def test_a_bearer_scheme_and_open_endpoints_say_so(api: Api):
    doc = api.anon.get("/openapi.json").json()
    assert doc["components"]["securitySchemes"]["HTTPBearer"] == {
        "type": "http", "scheme": "bearer", "description": "an API token (README: Identities and roles)"}
    assert doc["security"] == [{"HTTPBearer": []}]
    for method, path, op in operations(doc):
        open_ = path in ("/healthz", "/readyz", "/metrics", "/v1/slack/actions")
        assert op["security"] == ([] if open_ else [{"HTTPBearer": []}]), f"{method} {path}"


@pytest.mark.parametrize(("method", "url", "status"), [
    ("GET", "/v1/nowhere", 404), ("DELETE", "/v1/incidents", 405), ("GET", "/v1/incidents/1/ack", 405),
    ("GET", "/v1/incidents?stauts=open", 422), ("GET", "/v1/incidents/99999999999999999999999", 422),
    ("GET", "/v1/audit?since_seq=99999999999999999999999", 422)])
def test_unknown_routes_methods_and_parameters_answer_the_error_body(api: Api, method, url, status):
    r = api.client.request(method, url)
    assert r.status_code == status and set(r.json()) <= {"error", "fields"} and r.json()["error"]
    if status == 405:
        assert "allow" in r.headers
    if url.endswith("stauts=open"):
        assert r.json()["fields"] == [{"field": "query.stauts", "message": "unknown query parameter"}]


def test_an_unknown_path_or_method_says_what_to_do(api: Api):
    """Starlette's bare "Not Found" / "Method Not Allowed" told a curl user neither which
    request missed nor where the endpoints are listed."""
    r = api.client.post("/v1/incident/1/ack")
    assert r.status_code == 404
    assert r.json()["error"] == ("no endpoint POST /v1/incident/1/ack; "
                                 "the endpoints are listed at /docs and /openapi.json")
    r = api.client.delete("/v1/incidents")
    assert r.status_code == 405
    assert r.json()["error"] == "DELETE is not allowed on /v1/incidents; it takes GET"
    assert api.client.get("/v1/models/nope").json()["error"].startswith("unknown model 'nope'")  # a route's own 404


def test_docs_load_only_from_vigil(api: Api):
    page = api.anon.get("/docs")
    assert page.status_code == 200
    urls = re.findall(r"""(?:src|href|url)\s*[:=]\s*['"]([^'"]+)['"]""", page.text)
    assert len(urls) >= 4  # the script, the stylesheet, the icon and the document
    for url in urls:
        assert not re.match(r"^(https?:)?//", url), f"/docs loads {url} from elsewhere"
        r = api.anon.get(url)  # open, like the page: no token
        assert r.status_code == 200 and r.content, url
    assert api.anon.get("/docs/assets/swagger-ui-bundle.js").headers["content-type"].startswith("text/javascript")
    assert "SwaggerUIBundle" in api.anon.get("/docs/assets/swagger-ui-bundle.js").text
    assert api.client.get("/docs/assets/index.html").status_code == 404  # only what the page loads
    assert {"/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css"} <= OPEN_PATHS
    assert api.anon.get("/redoc").status_code == 401  # off: ReDoc would need a CDN


def test_docs_behind_a_proxy_prefix_load_from_the_prefix(api: Api):
    prefixed = TestClient(api.app, root_path="/vigil").get("/docs").text
    assert "/vigil/docs/assets/swagger-ui-bundle.js" in prefixed and "/vigil/openapi.json" in prefixed


def test_malformed_json_names_the_body_and_where(api: Api):
    r = api.client.post("/v1/models/recommender/rollback", content=b'{"reason": }',
                        headers={"Content-Type": "application/json"})
    assert r.status_code == 422
    assert r.json()["fields"][0]["field"] == "body" and "invalid JSON at character" in r.json()["error"]


def test_a_version_past_64_bits_is_the_callers_422_not_the_registrys_502(api: Api):
    """Found by the fuzz test: MLflow's SQL store failed on it, and the rollback said 502."""
    r = api.client.post("/v1/models/recommender/rollback", json={"reason": "ctr dropped", "to_version": "9" * 25})
    assert r.status_code == 422 and r.json()["fields"][0]["field"] == "to_version"
