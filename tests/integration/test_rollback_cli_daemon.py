"""`vigil rollback` from a terminal beside a daemon on the same SQLite store: another process,
so the daemon's per-model cycle lock does not see it. It recorded the intent and drove it
unfenced while the daemon's cycle (or its start-up) could drive the same intent: each layer
read at the old version by both, and written twice. Now, with the store's single-daemon lock
held by a running daemon, the terminal records the rollback and answers pending, for the
daemon's next cycle; with no daemon it drives, holding that lock so none starts mid-drive."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from monitor.cli import main
from monitor.config import MlflowConfig, load_config
from monitor.replicas import AnotherDaemonRunning, single_daemon_lock
from monitor.sources.registry import RegistrySource
from monitor.store.intents import RollbackIntentRow
from monitor.vigil import Vigil
from tests.integration.test_rollback_cli import _config, _registry

pytestmark = pytest.mark.integration


def _alias(uri: str) -> str | None:
    with RegistrySource(MlflowConfig(tracking_uri=uri)) as registry:
        return registry.alias_version("recommender", "champion")


def test_a_terminal_rollback_beside_a_running_daemon_is_left_to_the_daemons_next_cycle(tmp_path: Path, capsys: Any
                                                                                       ) -> None:
    uri = _registry(tmp_path)
    config = _config(tmp_path, "vigil.yaml", uri, keyed=False)
    argv = ["rollback", "recommender", "--config", config, "--reason", "bad deploy", "--to-version", "1"]
    with single_daemon_lock(f"sqlite:///{tmp_path / 'vigil.db'}"):  # `vigil run` on this store
        code = main(argv)
        got = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert _alias(uri) == "2", "the terminal moved the alias beside the running daemon"
        assert (code, got["status"]) == (1, "pending"), got
        assert "daemon" in got["detail"] and "next cycle" in got["detail"], got["detail"]
        daemon = Vigil(load_config(config), notifiers={})
        with daemon.store.tx() as s:
            assert [(i.actor, i.status) for i in s.query(RollbackIntentRow).all()] == [("cli:operator", "pending")]
        daemon.reconcile(time.time())  # the daemon's next cycle of the model moves it
    assert _alias(uri) == "1"
    assert [(a.status, a.actor) for a in daemon.store.actions(model="recommender")] == [("done", "cli:operator")]
    daemon.close()
    daemon.store.close()


def test_a_daemon_started_while_the_terminal_drives_its_rollback_is_refused(tmp_path: Path, capsys: Any,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """With no daemon the terminal drives as before, but holds the store's lock while it does:
    a daemon starting then would reconcile the same intent beside it."""
    import monitor.cycle.rollback_intents as intents_module

    uri = _registry(tmp_path)
    config = _config(tmp_path, "vigil.yaml", uri, keyed=False)
    refused: list[str] = []

    def daemon_starts(name: str) -> None:
        if name == "before_layer_move":
            try:
                single_daemon_lock(f"sqlite:///{tmp_path / 'vigil.db'}").release()
            except AnotherDaemonRunning as e:
                refused.append(str(e))
    monkeypatch.setattr(intents_module, "failpoint", daemon_starts)
    assert main(["rollback", "recommender", "--config", config, "--reason", "bad deploy", "--to-version", "1"]) == 0
    assert refused and "vigil rollback" in refused[0], "a daemon could start while the terminal moved the layers"
    assert _alias(uri) == "1"
    single_daemon_lock(f"sqlite:///{tmp_path / 'vigil.db'}").release()  # free again once the command is done
