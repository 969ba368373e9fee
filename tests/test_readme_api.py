"""Every API call the README shows an operator is one Vigil answers: each `GET /v1/...`,
`POST /v1/...` it names and each `http://host:8080/v1/...?a=` curl URL is a route of the
OpenAPI document with that method, and every query parameter written is one the route
declares (an unknown one is a 422, so a README line naming a renamed parameter fails for
whoever copies it). The error example of an unknown path is named, not checked."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.unit.monitor.test_api import build

README = Path(__file__).resolve().parents[1] / "README.md"
ENDPOINT = re.compile(r"\b(GET|POST|DELETE|PUT|PATCH)\s+(/v1/[\w{}\-/.]*)(\[?\?[^`\s|]*)?")
CURL_URL = re.compile(r"https?://[^/\s'\"]+(/v1/[\w{}\-/.]*)(\?[^'\"\s`]*)?")
ERROR_EXAMPLES = {("POST", "/v1/incident/1/ack")}  # README: Errors quotes its answer


def _calls(text: str) -> list[tuple[str, str, str]]:
    calls = [(m.group(1), m.group(2).rstrip("."), m.group(3) or "") for m in ENDPOINT.finditer(text)]
    calls += [("ANY", m.group(1).rstrip("."), m.group(2) or "") for m in CURL_URL.finditer(text)]
    return [c for c in calls if c[:2] not in ERROR_EXAMPLES]


def _problems(doc: dict[str, Any], method: str, path: str, query: str) -> list[str]:
    for route, item in doc["paths"].items():
        if not re.fullmatch(re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(route)), path):
            continue
        if method != "ANY" and method.lower() not in item:
            continue
        declared = {p["name"] for op in item.values() for p in op.get("parameters", []) if p["in"] == "query"}
        return [f"{method} {path}: no query parameter {name!r} (the route takes {sorted(declared)})"
                for name in re.findall(r"[?&](\w+)=", query) if name not in declared]
    return [f"{method} {path}: no such route"]


@pytest.fixture
def openapi(tmp_path, monkeypatch) -> dict[str, Any]:
    doc: dict[str, Any] = build(tmp_path, monkeypatch).anon.get("/openapi.json").json()
    return doc


def test_every_api_call_in_the_readme_is_a_route_with_those_query_parameters(openapi):
    calls = _calls(README.read_text())
    assert len(calls) > 20  # the table and the curl lines were found
    assert [p for call in calls for p in _problems(openapi, *call)] == []


def test_the_check_sees_a_wrong_path_method_and_parameter(openapi):
    assert _problems(openapi, "GET", "/v1/incident/1", "") == ["GET /v1/incident/1: no such route"]
    assert _problems(openapi, "DELETE", "/v1/models", "") == ["DELETE /v1/models: no such route"]
    assert _problems(openapi, "ANY", "/v1/silences", "?state=active&stat=x") == [
        "ANY /v1/silences: no query parameter 'stat' (the route takes "
        "['at', 'limit', 'max_id', 'offset', 'state'])"]
    assert _calls("`GET /v1/audit[?since_seq=&limit=]`") == [("GET", "/v1/audit", "[?since_seq=&limit=]")]
