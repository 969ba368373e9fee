"""`POST /v1/models/{name}/rollback` asked of `vigil serve` beside `vigil run` on one SQLite store.

`vigil serve` is another process than the daemon, so the daemon's per-model cycle lock does not
see its drive: it moved the alias itself while the daemon's cycle (or start-up) could drive the
same intent. Now, as the terminal's `vigil rollback`: with a daemon holding the store's
single-daemon lock the API records the rollback and answers 202 pending, and the daemon's next
cycle moves it, once; with no daemon it drives holding that lock, so a daemon starting meanwhile
is refused (exit 75) instead of driving the same intent beside it."""
from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from monitor.api.app import create_app
from monitor.config import MlflowConfig, load_config
from monitor.replicas import single_daemon_lock
from monitor.sources.registry import RegistrySource
from monitor.startup import prepare
from monitor.store.repository import Store
from monitor.vigil import Vigil
from tests.fixtures_mlflow import closed_port_url
from tests.integration.test_daemon import raw_last_cycle_at, wait_for
from tests.integration.test_rollback_cli import _registry

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
OPERATOR = "olga-operator-token-7f3c1a"
ASK = {"reason": "CTR -10% since v2", "to_version": "1"}


def _config(tmp_path: Path, uri: str) -> str:
    (tmp_path / "vigil.yaml").write_text(yaml.safe_dump({
        "store": {"url": f"sqlite:///{tmp_path / 'vigil.db'}"}, "slack": {"sink_path": "notifications.jsonl"},
        "sources": {"prometheus": {"url": closed_port_url(), "timeout_s": 0.2, "retries": 0},
                    "mlflow": {"tracking_uri": uri}},
        "schedule": {"interval": "1s", "lookback": "5m", "baseline": "10m"},
        "api": {"host": "127.0.0.1", "tokens": [{"name": "olga", "role": "operator",
                                                 "token_sha256": hashlib.sha256(OPERATOR.encode()).hexdigest()}]},
        "models": [{"name": "recommender", "alias": "champion"}]}))
    return str(tmp_path / "vigil.yaml")


def _alias(uri: str) -> str | None:
    with RegistrySource(MlflowConfig(tracking_uri=uri)) as registry:
        return registry.alias_version("recommender", "champion")


def _daemon(tmp_path: Path, config: str, failpoints: str = "") -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "VIGIL_FAILPOINTS": failpoints}
    env.pop("SLACK_BOT_TOKEN", None)
    return subprocess.Popen([sys.executable, "-m", "monitor.cli", "--log-level", "WARNING", "run", "--config", config,
                             "--no-api"], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


@contextmanager
def _serve(config: str) -> Iterator[tuple[Vigil, TestClient]]:
    """The API of a `vigil serve` process (no cycles), as `serve_api_only` prepares it."""
    vigil = Vigil(load_config(config), notifiers={})
    prepare(vigil, config, cycles=False)
    try:
        yield vigil, TestClient(create_app(vigil), raise_server_exceptions=False)
    finally:
        vigil.close()
        vigil.store.close()


def _rollbacks(tmp_path: Path) -> list[str]:
    store = Store(f"sqlite:///{tmp_path / 'vigil.db'}")
    try:
        return [e.action for e in store.audit_entries() if e.action.startswith("rollback.")]
    finally:
        store.close()


@pytest.mark.slow
def test_an_api_rollback_on_serve_beside_a_running_daemon_is_left_to_the_daemon_and_moved_once(tmp_path: Path
                                                                                                ) -> None:
    uri = _registry(tmp_path)
    config = _config(tmp_path, uri)
    # The daemon's own move waits 3 s: the alias is seen unmoved after the API's answer.
    daemon = _daemon(tmp_path, config, failpoints="before_layer_move=sleep:3")
    try:
        wait_for("the daemon's first cycle", lambda: raw_last_cycle_at(tmp_path / "vigil.db", "recommender"), 90,
                 daemon)
        with _serve(config) as (_vigil, client):
            r = client.post("/v1/models/recommender/rollback", json=ASK,
                            headers={"Authorization": f"Bearer {OPERATOR}"})
            assert _alias(uri) == "2", f"vigil serve moved the alias beside the daemon: {r.status_code} {r.text}"
            assert r.status_code == 202 and r.json()["status"] == "pending", r.text
            assert "daemon" in r.json()["detail"] and "next cycle" in r.json()["detail"], r.text
            wait_for("the daemon to move the alias", lambda: _alias(uri) == "1", 60, daemon)
            wait_for("the rollback recorded done", lambda: "rollback.done" in _rollbacks(tmp_path), 30, daemon)
            time.sleep(2)  # two more of the daemon's cycles: nothing moves again
        assert _rollbacks(tmp_path) == ["rollback.requested", "rollback.done"]
        assert _alias(uri) == "1"
    finally:
        _stop(daemon)


@pytest.mark.slow
def test_an_api_rollback_on_serve_with_no_daemon_drives_and_a_daemon_starting_meanwhile_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import monitor.cycle.rollback_intents as intents_module

    uri = _registry(tmp_path)
    config = _config(tmp_path, uri)
    started: list[tuple[int | None, str]] = []

    def daemon_starts(name: str) -> None:
        """`vigil run` started on the store while the API's drive is about to move the alias."""
        if name != "before_layer_move" or started:
            return
        proc = _daemon(tmp_path, config)
        try:
            _out, err = proc.communicate(timeout=90)
        except subprocess.TimeoutExpired:  # it runs: it reconciles the same intent beside this drive
            err = "still running"
        finally:
            _stop(proc)
        started.append((proc.returncode, err))
    monkeypatch.setattr(intents_module, "failpoint", daemon_starts)
    with _serve(config) as (_vigil, client):
        r = client.post("/v1/models/recommender/rollback", json=ASK, headers={"Authorization": f"Bearer {OPERATOR}"})
    assert r.status_code == 200 and r.json()["status"] == "done", r.text
    assert started, "the drive never reached the alias"
    code, err = started[0]
    assert code == 75 and "another Vigil daemon" in err and "vigil serve" in err, (code, err[-2000:])
    assert _alias(uri) == "1"
    assert _rollbacks(tmp_path) == ["rollback.requested", "rollback.done"]
    single_daemon_lock(f"sqlite:///{tmp_path / 'vigil.db'}").release()  # free again once the answer is given
