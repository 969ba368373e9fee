"""A start refused before the daemon runs (the store lock held by another `vigil run`, a store
behind this Vigil's schema, an audit key that cannot be read) lets go of the store it opened:
its SQLite files are closed (a PostgreSQL store's connections: test_refused_start_postgres)
when the refusal returns, as they are after an orderly stop."""
from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
import yaml
from sqlalchemy import create_engine

from monitor.cli import main
from monitor.daemon import run_daemon
from monitor.replicas import AnotherDaemonRunning, single_daemon_lock
from monitor.store import schema
from monitor.store.repository import Store
from tests.helpers_vigil import make_config


def open_files(under: Path, name: str) -> list[str]:
    """This process's open descriptors on the SQLite store `name` (its -wal/-shm too), not its lock file."""
    held = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # closed while listed (the listing's own descriptor)
            continue
        if target.startswith(str(under / name)) and not target.endswith(".lock"):
            held.append(target)
    return held


def write_config(tmp_path: Path, **extra: object) -> Path:
    path = tmp_path / "vigil.yaml"
    path.write_text(yaml.safe_dump({
        "store": {"url": f"sqlite:///{tmp_path / 'vigil.db'}"}, "slack": {"sink_path": "notifications.jsonl"},
        "spool": {"directory": "spool"},
        "sources": {"prometheus": {"url": "http://127.0.0.1:9"}, "mlflow": {"tracking_uri": "http://127.0.0.1:9"}},
        "models": [{"name": "m"}], **extra}))
    return path


@pytest.fixture(autouse=True)
def linux_only() -> None:
    if not Path("/proc/self/fd").is_dir():
        pytest.skip("counts open files through /proc/self/fd")


def test_vigil_run_refused_by_the_store_lock_closes_the_store(tmp_path):
    config = write_config(tmp_path)
    Store(f"sqlite:///{tmp_path / 'vigil.db'}").close()  # made (and let go) by the daemon that runs
    with single_daemon_lock(f"sqlite:///{tmp_path / 'vigil.db'}"):  # the other `vigil run`
        assert main(["run", "--config", str(config), "--no-api"]) == 75
        assert open_files(tmp_path, "vigil.db") == []


def test_a_refused_run_daemon_closes_the_store_it_was_given(tmp_path):
    """The daemon closes its Vigil's store whichever way it ends: a refusal too."""
    from tests.helpers_vigil import make_vigil

    vigil = make_vigil(make_config(tmp_path), notifiers={})
    vigil.store.audit("alice", "incident.ack", "incident:1", {})
    assert open_files(tmp_path, "vigil.db")  # the store is open before the start
    with single_daemon_lock(vigil.config.store.url), pytest.raises(AnotherDaemonRunning):
        run_daemon(vigil.config, serve_api=False, vigil=vigil, stop=threading.Event())
    assert open_files(tmp_path, "vigil.db") == []
    assert vigil.store.engine.pool.checkedin() == 0


def test_vigil_run_on_a_store_behind_closes_the_store(tmp_path):
    config = write_config(tmp_path)
    engine = create_engine(f"sqlite:///{tmp_path / 'vigil.db'}")
    schema.upgrade(engine, "0001_baseline")  # the store as an earlier version left it
    engine.dispose()
    assert main(["run", "--config", str(config), "--no-api"]) == 78
    assert open_files(tmp_path, "vigil.db") == []


def test_a_start_refused_by_an_audit_key_read_at_start_closes_the_store(tmp_path, monkeypatch):
    """The key is read again when the daemon builds its Vigil (after its store is open): a key
    file removed in between stops the start, exit 2, and the store is let go."""
    from monitor.audit import wiring
    from monitor.audit.keys import AuditKeyError

    config = write_config(tmp_path)

    def unreadable(config):
        raise AuditKeyError("audit.key_file: /etc/vigil/audit.key: no such file")

    monkeypatch.setattr(wiring, "settings_for", unreadable)
    assert main(["run", "--config", str(config), "--no-api"]) == 2
    assert open_files(tmp_path, "vigil.db") == []
