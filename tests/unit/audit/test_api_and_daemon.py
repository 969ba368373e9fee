"""`GET /v1/audit` reports the whole log's status, checkpoints included; the daemon
checkpoints the head at start-up and at shutdown."""
from __future__ import annotations

import json
import threading

import pytest
import yaml
from fastapi.testclient import TestClient

from monitor.api.app import create_app
from monitor.audit.verify import ReportCache
from monitor.cli import main
from monitor.config import load_config
from monitor.daemon import run_daemon
from tests.helpers_vigil import make_config, make_vigil
from tests.unit.audit.helpers import KEY_ENV

READER = "audit-reader-token-5b1e"


def keyed_vigil(tmp_path, monkeypatch=None):
    api = {}
    if monkeypatch is not None:
        monkeypatch.setenv("VIGIL_AUDIT_TEST_TOKEN", READER)
        api = {"token": "${VIGIL_AUDIT_TEST_TOKEN}"}
    cfg = make_config(tmp_path, audit={"key_env": KEY_ENV, "checkpoint_file": "audit.checkpoints"}, api=api)
    return make_vigil(cfg, notifiers={})


def test_the_api_reports_chain_and_checkpoint_agreement(tmp_path, monkeypatch):
    vigil = keyed_vigil(tmp_path, monkeypatch)
    client = TestClient(create_app(vigil), headers={"Authorization": f"Bearer {READER}"})
    for i in range(3):
        vigil.store.audit("alice", "incident.ack", f"incident:{i}", {})
    vigil.checkpoints.stop()
    chain = client.get("/v1/audit").json()["chain"]
    assert chain["ok"] and chain["keyed"] and chain["keyed_from"] == 1 and chain["head_seq"] == 4
    cps = chain["checkpoints"]
    assert cps["agree"] and cps["read"] == cps["signed"] == 1 and cps["newest"]["head_seq"] == 4

    with vigil.store.engine.begin() as c:
        c.exec_driver_sql("delete from audit_log where seq > 2")
    chain = client.get("/v1/audit").json()["chain"]
    assert not chain["ok"] and not chain["checkpoints"]["agree"] and chain["checkpoints"]["bad_line"] == 1
    assert "the log ends at seq 2, but checkpoint line 1" in chain["reason"]


def test_the_daemon_checkpoints_at_start_and_at_shutdown(tmp_path):
    vigil = keyed_vigil(tmp_path)
    vigil.store.audit("alice", "incident.ack", "incident:1", {})  # written before this daemon started
    stop = threading.Event()
    done: list[int] = []
    worker = threading.Thread(target=lambda: done.append(run_daemon(vigil.config, serve_api=False, vigil=vigil,
                                                                    stop=stop, cycles=False)), daemon=True)
    worker.start()
    path = tmp_path / "audit.checkpoints"
    while not path.exists() and worker.is_alive():
        worker.join(0.05)
    vigil.store.audit("bob", "incident.silence", "incident:1", {})
    stop.set()
    worker.join(10)
    assert done == [0]
    assert [json.loads(x)["head_seq"] for x in path.read_text().splitlines()] == [2, 3]


def test_the_api_verdict_is_reused_only_while_nothing_changed(tmp_path):
    vigil = keyed_vigil(tmp_path)
    vigil.store.audit("alice", "incident.ack", "incident:1", {})
    settings = vigil.checkpoints.settings
    cache = ReportCache(max_age_s=3600)
    first = cache.report(vigil.store, settings.key, settings.checkpoint_file)
    assert cache.report(vigil.store, settings.key, settings.checkpoint_file) is first
    vigil.checkpoints.stop()  # the checkpoint file changed
    second = cache.report(vigil.store, settings.key, settings.checkpoint_file)
    assert second is not first and second.checkpoints.lines
    vigil.store.audit("alice", "incident.ack", "incident:2", {})  # the head moved
    assert cache.report(vigil.store, settings.key, settings.checkpoint_file).chain.head_seq == 3
    assert ReportCache(max_age_s=0).report(vigil.store, settings.key, settings.checkpoint_file) is not first


def test_verify_reads_key_and_checkpoint_file_from_the_config(tmp_path, capsys):
    (tmp_path / "audit.key").write_text("a-key-file-with-enough-bytes\n")
    (tmp_path / "vigil.yaml").write_text(yaml.safe_dump({
        "store": {"url": f"sqlite:///{tmp_path / 'vigil.db'}"},
        "audit": {"key_file": "audit.key", "checkpoint_file": "audit.checkpoints"},
        "models": [{"name": "m"}]}))
    vigil = make_vigil(load_config(tmp_path / "vigil.yaml"), notifiers={})
    vigil.store.audit("alice", "incident.ack", "incident:1", {})
    vigil.checkpoints.stop()
    assert main(["audit", "verify", "--config", str(tmp_path / "vigil.yaml")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("audit log OK: 2 entries") and "note:" not in out
    with vigil.store.engine.begin() as c:
        c.exec_driver_sql("delete from audit_log")
    assert main(["audit", "verify", "--config", str(tmp_path / "vigil.yaml")]) == 1
    assert "wiped" in capsys.readouterr().err


def test_a_configured_key_that_cannot_be_read_stops_the_start(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("UNSET_AUDIT_KEY", raising=False)
    (tmp_path / "vigil.yaml").write_text(yaml.safe_dump({
        "store": {"url": f"sqlite:///{tmp_path / 'vigil.db'}"}, "audit": {"key_env": "UNSET_AUDIT_KEY"},
        "models": [{"name": "m"}]}))
    with pytest.raises(SystemExit) as e:  # refused with the config's other errors, as check-config lists them
        main(["run", "--config", str(tmp_path / "vigil.yaml"), "--no-api"])
    assert e.value.code == 2
    assert "audit.key_env: the environment variable UNSET_AUDIT_KEY is not set" in capsys.readouterr().err


def test_check_config_refuses_an_audit_key_that_run_would_refuse(tmp_path, capsys, monkeypatch):
    """check-config said OK (a CI gate passed), then `vigil run` refused to start on the
    same file: the audit key variable unset, its file missing, or too short."""
    monkeypatch.delenv("UNSET_AUDIT_KEY", raising=False)
    (tmp_path / "short.key").write_text("short\n")
    for audit, said in (({"key_env": "UNSET_AUDIT_KEY"}, "UNSET_AUDIT_KEY is not set"),
                        ({"key_file": "missing.key"}, "missing.key"), ({"key_file": "short.key"}, "holds 5 bytes")):
        (tmp_path / "vigil.yaml").write_text(yaml.safe_dump({"audit": audit, "models": [{"name": "m"}]}))
        assert main(["check-config", str(tmp_path / "vigil.yaml")]) == 1, audit
        err = capsys.readouterr().err
        assert f"audit.{next(iter(audit))}" in err and said in err, err


def test_a_start_refused_by_the_store_lock_logs_only_the_refusal(tmp_path, caplog):
    from monitor.replicas import AnotherDaemonRunning, single_daemon_lock

    vigil = keyed_vigil(tmp_path)
    vigil.store.audit("alice", "incident.ack", "incident:1", {})
    caplog.set_level("INFO")
    with single_daemon_lock(vigil.config.store.url), pytest.raises(AnotherDaemonRunning):  # the first daemon's
        run_daemon(vigil.config, serve_api=False, vigil=vigil, stop=threading.Event())
    said = [r.getMessage() for r in caplog.records]
    assert not [m for m in said if "stopping" in m or "stopped" in m], said  # it never started
    assert not (tmp_path / "audit.checkpoints").exists(), "a refused daemon writes no shutdown checkpoint"


def test_a_start_that_fails_after_taking_the_store_lock_lets_it_go(tmp_path, monkeypatch):
    """The lock is taken before anything starts; a start failing after it (the source prober
    or the liveness clock could not start) must still let it go, or the store stays locked
    for the life of the process and a restarted daemon beside it is refused."""
    from monitor import daemon
    from monitor.replicas import single_daemon_lock

    def cannot_start(self):
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(daemon.SourceProber, "start", cannot_start)
    vigil = keyed_vigil(tmp_path)
    with pytest.raises(RuntimeError, match="new thread"):
        run_daemon(vigil.config, serve_api=False, vigil=vigil, stop=threading.Event())
    with single_daemon_lock(vigil.config.store.url) as again:  # free again
        assert again.held
