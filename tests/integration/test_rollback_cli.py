"""`vigil rollback MODEL --config FILE --reason TEXT` as a person types it, against a real
MLflow registry (SQLite) and the store the daemon keys its audit log in."""
from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from monitor.cli import main
from monitor.config import MlflowConfig
from monitor.replay.local_mlflow import sqlite_tracking_uri
from monitor.replay.registry_bundle import RegistryEvent, RegistryTimeline
from monitor.sources.registry import RegistrySource
from monitor.store.repository import Store

pytestmark = pytest.mark.integration
KEY_ENV = "VIGIL_TEST_ROLLBACK_AUDIT_KEY"


def _registry(tmp_path: Path) -> str:
    """recommender v1 and v2, `champion` on v2."""
    uri = sqlite_tracking_uri(tmp_path / "mlflow.db")
    now = time.time()
    events = [RegistryEvent("model", "recommender", now - 90 * 86400),
              RegistryEvent("version", "recommender", now - 80 * 86400, version="1"),
              RegistryEvent("version", "recommender", now - 70 * 86400, version="2"),
              RegistryEvent("alias", "recommender", now - 60 * 86400, version="2", alias="champion")]
    with RegistrySource(MlflowConfig(tracking_uri=uri)) as registry:
        RegistryTimeline(events, registry).apply_until(now)
    return uri


def _config(tmp_path: Path, name: str, uri: str, *, keyed: bool) -> str:
    (tmp_path / name).write_text(yaml.safe_dump({
        "store": {"url": f"sqlite:///{tmp_path / 'vigil.db'}"}, "slack": {"sink_path": "notifications.jsonl"},
        "sources": {"prometheus": {"url": "http://127.0.0.1:9"}, "mlflow": {"tracking_uri": uri}},
        **({"audit": {"key_env": KEY_ENV}} if keyed else {}),
        "models": [{"name": "recommender", "alias": "champion"}]}))
    return str(tmp_path / name)


def test_a_rollback_without_the_audit_key_of_a_keyed_log_is_refused_before_anything_moves(tmp_path, capsys,
                                                                                          monkeypatch):
    """A copy of vigil.yaml without `audit:` (a laptop, a runbook's) appended unkeyed entries
    to the keyed audit log: `vigil audit verify` then reported it BROKEN, as if tampered with,
    for ever. It is refused like `vigil silence add` is, and nothing moves."""
    monkeypatch.setenv(KEY_ENV, "0123456789abcdef0123456789abcdef")
    uri = _registry(tmp_path)
    keyed = _config(tmp_path, "vigil.yaml", uri, keyed=True)
    assert main(["silence", "add", "--config", keyed, 'model="recommender"', "--comment", "keys the log"]) == 0
    unkeyed = _config(tmp_path, "laptop.yaml", uri, keyed=False)
    capsys.readouterr()

    for extra in (["--dry-run"], []):
        code = main(["rollback", "recommender", "--config", unkeyed, "--reason", "bad deploy", "--to-version", "1",
                     *extra])
        assert code == 2, extra
        err = capsys.readouterr().err
        assert "keyed" in err and "audit.key_env" in err, extra
    with RegistrySource(MlflowConfig(tracking_uri=uri)) as registry:
        assert registry.alias_version("recommender", "champion") == "2"  # nothing moved
    assert main(["audit", "verify", "--config", keyed]) == 0, capsys.readouterr().err

    # With the key, the same rollback goes through and the log still verifies.
    assert main(["rollback", "recommender", "--config", keyed, "--reason", "bad deploy", "--to-version", "1"]) == 0
    assert main(["audit", "verify", "--config", keyed]) == 0, capsys.readouterr().err
    store = Store(f"sqlite:///{tmp_path / 'vigil.db'}")
    assert [e.actor for e in store.audit_entries()][-1] == "cli:operator"
    store.close()


@pytest.mark.parametrize("version, why", [("v1", "digits"), ("99", "not found")])
def test_a_version_the_registry_cannot_serve_is_refused_before_a_rollback_is_recorded(tmp_path, capsys, version,
                                                                                      why):
    """`--to-version v1` (as Vigil's messages write versions) or a version that does not
    exist: the API answers 422 naming to_version and records nothing; the CLI recorded an
    intent, audited a requested and a failed rollback and exited 1 as if the registry failed."""
    uri = _registry(tmp_path)
    config = _config(tmp_path, "vigil.yaml", uri, keyed=False)
    try:
        code = main(["rollback", "recommender", "--config", config, "--reason", "bad deploy", "--to-version", version])
    except SystemExit as e:  # argparse refuses the option itself
        code = e.code
    assert code in (2, 64)
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--to-version" in last and why in last
    store = Store(f"sqlite:///{tmp_path / 'vigil.db'}")
    assert [e.action for e in store.audit_entries()] == []  # nothing recorded
    store.close()
    with RegistrySource(MlflowConfig(tracking_uri=uri)) as registry:
        assert registry.alias_version("recommender", "champion") == "2"
