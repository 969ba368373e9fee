"""A version asked for by another spelling of its number is the same version.

MLflow reads a version as a number (the registry client canonicalises `02` to `2`), so
`to_version: "02"` moved the alias to v2. The blame check compared the text: v2, blamed
by the rollback that moved away from it, was refused as "2" and taken as "02", by an
operator without `force` (which needs admin)."""
from __future__ import annotations

import hashlib
import time

import pytest
from fastapi.testclient import TestClient

from monitor.api.app import create_app
from monitor.cli_args import version_arg
from monitor.sources.registry import RegistrySource
from tests.helpers_vigil import make_config, make_vigil, model_config

OPERATOR = "olga-operator-token-93b7aa"
ADMIN = "ada-admin-token-1c9d2e"


@pytest.mark.parametrize("spelling", ["02", "002", "\u0662"])  # "٢": Arabic-Indic 2, a digit to `\d` and int()
def test_a_blamed_version_spelt_another_way_is_still_refused_without_force(
        tmp_path, sqlite_registry: RegistrySource, model_name: str, spelling: str) -> None:
    sqlite_registry.create_model(model_name)
    for _ in range(2):
        sqlite_registry.create_version(model_name, f"vigil-test:/{model_name}")
    sqlite_registry.set_alias(model_name, "champion", "1")
    cfg = make_config(tmp_path, models=[model_config(model_name)], api={"tokens": [
        {"name": "olga", "role": "operator", "token_sha256": hashlib.sha256(OPERATOR.encode()).hexdigest()},
        {"name": "ada", "role": "admin", "token_sha256": hashlib.sha256(ADMIN.encode()).hexdigest()}]})
    vigil = make_vigil(cfg, registry=sqlite_registry, notifiers={})
    vigil.deploys.poll(cfg.model(model_name), time.time() - 7200)
    sqlite_registry.set_alias(model_name, "champion", "2")  # a deploy of v2 ...
    vigil.deploys.poll(cfg.model(model_name), time.time() - 3600)
    client = TestClient(create_app(vigil), raise_server_exceptions=False)
    url = f"/v1/models/{model_name}/rollback"
    r = client.post(url, json={"reason": "CTR -10% since v2"}, headers={"Authorization": f"Bearer {ADMIN}"})
    assert r.status_code == 200 and r.json()["to_version"] == "1", r.text  # ... rolled back: v2 is blamed now

    operator = {"Authorization": f"Bearer {OPERATOR}"}
    r = client.post(url, json={"reason": "back to v2", "to_version": "2"}, headers=operator)
    assert r.status_code == 409 and "blamed" in r.json()["error"], r.text
    r = client.post(url, json={"reason": "back to v2", "to_version": spelling}, headers=operator)
    if spelling.isascii():
        assert r.status_code == 409 and "v2 is blamed" in r.json()["error"], r.text
    else:  # the README's "a string of digits" is 0-9
        assert r.status_code == 422 and r.json()["fields"][0]["field"] == "to_version", r.text
    assert sqlite_registry.alias_version(model_name, "champion") == "1"


def test_the_cli_reads_a_version_as_the_registry_does() -> None:
    assert version_arg(" 02 ") == "2" and version_arg("10") == "10"
