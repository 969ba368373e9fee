"""When checkpoints are written, what a line holds, and where its copies go (the file,
the `vigil_audit_head_seq` gauge, the `audit checkpoint` log line)."""
from __future__ import annotations

import json
import logging

import pytest

from monitor.audit.checkpointer import AuditSettings, Checkpointer
from monitor.audit.checkpoints import Checkpoint
from monitor.audit.keys import AuditKeyError, key_from_env, load_key
from monitor.audit.verify import verify_log
from monitor.audit.wiring import install
from monitor.config import ConfigError
from monitor.metrics import VigilMetrics
from monitor.store.repository import Store
from tests.helpers_vigil import make_config
from tests.unit.audit.helpers import KEY_ENV


class Ticks:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def store(tmp_path):
    s = Store(f"sqlite:///{tmp_path / 'vigil.db'}")
    yield s
    s.close()


def attach(store: Store, tmp_path, **kw) -> tuple[Checkpointer, VigilMetrics, Ticks]:
    metrics, ticks = VigilMetrics(), Ticks()
    settings = AuditSettings(key_from_env(KEY_ENV), tmp_path / "audit.checkpoints", **kw)
    cp = Checkpointer(store, settings, metrics, monotonic=ticks)
    store.audit_key, store.audit_listener = settings.key, cp.committed
    return cp, metrics, ticks


def lines(tmp_path) -> list[dict]:
    path = tmp_path / "audit.checkpoints"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def test_a_rollback_entry_is_checkpointed_at_once(store, tmp_path):
    attach(store, tmp_path, every_entries=100)
    store.audit("alice", "incident.ack", "incident:1", {})
    assert lines(tmp_path) == []
    store.audit("vigil", "rollback.refused", "model:m", {})  # the guard's refusals are not rollbacks
    assert lines(tmp_path) == []
    with store.tx() as s:  # in the caller's transaction: checkpointed once it commits
        store.audit_in(s, "alice", "rollback.requested", "model:m", {"to": "1"})
        assert lines(tmp_path) == []
    [line] = lines(tmp_path)
    assert (line["count"], line["head_seq"]) == (4, 4)  # marker, ack, refused, requested
    assert line["head_hash"] == store.audit_entries()[-1].hash and line["sig"]


def test_every_n_entries_and_after_the_interval(store, tmp_path):
    _, _, ticks = attach(store, tmp_path, every_entries=5, interval_s=60.0)
    for i in range(4):  # marker + 4 entries = 5 appended
        store.audit("alice", "incident.ack", f"incident:{i}", {})
    assert [x["head_seq"] for x in lines(tmp_path)] == [5]
    store.audit("alice", "incident.ack", "incident:9", {})
    ticks.t = 61.0
    store.audit("alice", "incident.ack", "incident:10", {})
    assert [x["head_seq"] for x in lines(tmp_path)] == [5, 7]


def test_an_unchanged_head_writes_no_line_but_sets_the_gauge(store, tmp_path):
    cp, metrics, _ = attach(store, tmp_path)
    assert cp.tick() is None and lines(tmp_path) == []  # an empty log: nothing to vouch for
    store.audit("alice", "incident.ack", "incident:1", {})
    assert cp.tick() is not None and cp.tick() is None and cp.stop() is None
    assert len(lines(tmp_path)) == 1
    assert metrics.registry.get_sample_value("vigil_audit_head_seq") == 2
    assert metrics.registry.get_sample_value("vigil_audit_checkpoint_timestamp_seconds") > 0


def test_the_log_line_carries_seq_and_hash(store, tmp_path, caplog):
    cp, _, _ = attach(store, tmp_path)
    store.audit("alice", "incident.ack", "incident:1", {})
    with caplog.at_level(logging.INFO, logger="vigil.audit"):
        written = cp.stop()
    [rec] = [r for r in caplog.records if r.getMessage() == "audit checkpoint"]
    assert (rec.seq, rec.hash, rec.count, rec.reason) == (2, written.head_hash, 2, "shutdown")


def test_an_unwritable_file_never_fails_the_append(store, tmp_path, caplog):
    metrics, ticks = VigilMetrics(), Ticks()
    settings = AuditSettings(None, tmp_path / "missing-dir" / "audit.checkpoints", every_entries=1)
    store.audit_listener = Checkpointer(store, settings, metrics, monotonic=ticks).committed
    entry = store.audit("alice", "incident.ack", "incident:1", {})
    assert entry.seq == 1 and len(store.audit_entries()) == 1
    assert "audit checkpoint could not be written to the file" in caplog.text
    assert metrics.registry.get_sample_value("vigil_audit_head_seq") == 1


def test_a_failing_listener_never_fails_the_append(store, caplog):
    def boom(_entries):
        raise RuntimeError("disk on fire")

    store.audit_listener = boom
    assert store.audit("alice", "incident.ack", "incident:1", {}).seq == 1
    assert len(store.audit_entries()) == 1 and "audit listener failed" in caplog.text


def test_start_warns_about_what_an_unkeyed_configuration_cannot_detect(store, tmp_path, caplog):
    cp = install(store, make_config(tmp_path), VigilMetrics())
    with caplog.at_level(logging.WARNING, logger="vigil.audit"):
        cp.start()
    assert "the audit log is not keyed" in caplog.text and "audit.checkpoint_file is not set" in caplog.text


def test_checkpoints_from_a_keyless_start_then_signed_ones_verify(store, tmp_path):
    path = tmp_path / "audit.checkpoints"
    plain = Checkpointer(store, AuditSettings(None, path))
    store.audit_listener = plain.committed
    store.audit("alice", "incident.ack", "incident:1", {})
    plain.stop()
    keyed, _, _ = attach(store, tmp_path)
    store.audit("alice", "incident.ack", "incident:2", {})
    keyed.stop()
    report = verify_log(store, store.audit_key, path)
    assert report.ok, report.problem
    assert [x["sig"] is None for x in lines(tmp_path)] == [True, False]
    assert any("1 checkpoint lines predate the key (unsigned)" in n for n in report.notes)


def test_a_torn_last_line_is_a_note_not_a_failure(store, tmp_path):
    cp, _, _ = attach(store, tmp_path)
    store.audit("alice", "incident.ack", "incident:1", {})
    cp.stop()
    with (tmp_path / "audit.checkpoints").open("a") as f:
        f.write('{"at": 1, "cou')
    report = verify_log(store, store.audit_key, tmp_path / "audit.checkpoints")
    assert report.ok and any("incomplete" in n for n in report.notes)


def test_a_checkpoint_with_an_extra_field_is_not_a_checkpoint():
    line = json.loads(Checkpoint(1.0, 1, 1, "a" * 64, "h:1").to_line())
    with pytest.raises(ValueError):
        Checkpoint.parse(json.dumps({**line, "extra": 1}))


def test_key_errors_name_the_field(tmp_path, monkeypatch):
    monkeypatch.delenv("NOT_SET_AUDIT_KEY", raising=False)
    with pytest.raises(AuditKeyError, match="audit.key_env: the environment variable NOT_SET_AUDIT_KEY is not set"):
        load_key(make_config(tmp_path, audit={"key_env": "NOT_SET_AUDIT_KEY"}).audit, tmp_path)
    (tmp_path / "short.key").write_text("abc\n")
    with pytest.raises(AuditKeyError, match="holds 3 bytes; an audit key needs at least 16"):
        load_key(make_config(tmp_path, audit={"key_file": "short.key"}).audit, tmp_path)
    with pytest.raises(AuditKeyError, match="cannot read"):
        load_key(make_config(tmp_path, audit={"key_file": "nope.key"}).audit, tmp_path)
    (tmp_path / "good.key").write_text("0123456789abcdef0123\n")
    assert load_key(make_config(tmp_path, audit={"key_file": "good.key"}).audit, tmp_path) is not None


def test_config_refuses_two_keys_and_a_pasted_key(tmp_path):
    with pytest.raises(ConfigError, match="at most one of key_env and key_file"):
        make_config(tmp_path, audit={"key_env": "A", "key_file": "b"})
    with pytest.raises(ConfigError) as e:
        make_config(tmp_path, audit={"key_env": "s3cr3t-value!"})
    assert "s3cr3t" not in str(e.value)


@pytest.mark.parametrize("action", ["canary.pull.done", "canary.promote.requested", "canary.pull.failed"])
def test_a_canary_pull_or_promotion_is_checkpointed_at_once_like_a_rollback(store, tmp_path, action):
    """Pulling a canary removes an alias and pins serving traffic, promoting one moves the
    champion: actions on serving, as a rollback is, and their entries are covered at once."""
    attach(store, tmp_path, every_entries=100)
    store.audit("vigil", action, "model:m", {})
    [line] = lines(tmp_path)
    assert line["head_seq"] == 2  # marker, then the canary entry


def test_a_reload_does_not_checkpoint_again_a_head_already_checkpointed(tmp_path):
    """Every SIGHUP built a new checkpointer that had checkpointed nothing: its first tick
    wrote the same head again (a second `audit checkpoint seq=4` log line and file line, the
    head not moved since), and the entries counted toward `checkpoint_every` were forgotten."""
    from monitor.reload import successor
    from tests.helpers_vigil import make_vigil

    cfg = make_config(tmp_path, audit={"checkpoint_file": str(tmp_path / "audit.checkpoints")})
    old = make_vigil(cfg)
    old.store.audit("alice", "incident.ack", "incident:1", {})
    assert old.checkpoints.tick() is not None
    new = successor(old, cfg)
    assert new.checkpoints.tick() is None, "the head did not move: nothing to checkpoint"
    assert len(lines(tmp_path)) == 1
    new.store.audit("alice", "incident.ack", "incident:2", {})
    assert new.checkpoints.tick() is not None and len(lines(tmp_path)) == 2
