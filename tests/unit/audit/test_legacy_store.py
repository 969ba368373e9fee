"""A store written before keyed chains (plain SHA-256 entries, no checkpoints) still
verifies, says which entries are legacy, and gains keyed entries after a marker without
any existing row being rewritten."""
from __future__ import annotations

from alerts.audit import KEYED_MARKER, verify_chain
from monitor.audit.wiring import install
from monitor.cli import main
from monitor.store.repository import Store
from tests.helpers_vigil import make_config
from tests.unit.audit.helpers import KEY_ENV


def legacy_store(tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'vigil.db'}"
    store = Store(url)  # no key: exactly the entries Vigil wrote before keying
    for i in range(3):
        store.audit("vigil", "rollback.refused", "model:m", {"guard": "cooldown", "i": i}, now=100.0 + i)
    store.close()
    return url


def test_a_legacy_store_verifies_with_a_note(tmp_path, capsys):
    url = legacy_store(tmp_path)
    assert main(["audit", "verify", "--store", url]) == 0
    out = capsys.readouterr().out
    assert out.startswith("audit log OK: 3 entries")
    # never keyed: said so, not as if a key had once been set ("predate keying")
    assert "the audit log is not keyed: its 3 entries are a plain SHA-256 hash chain" in out
    assert "predate" not in out
    assert "not keyed: without a key an entry rewritten and re-hashed" in out
    assert "no checkpoint file" in out


def test_a_legacy_store_gains_a_marker_and_keyed_entries_and_old_rows_stay(tmp_path, capsys):
    url = legacy_store(tmp_path)
    store = Store(url)
    before = [(e.seq, e.hash) for e in store.audit_entries()]
    cfg = make_config(tmp_path, audit={"key_env": KEY_ENV, "checkpoint_file": "audit.checkpoints"})
    checkpointer = install(store, cfg, None)
    store.audit("alice", "incident.ack", "incident:1", {}, now=200.0)
    store.audit("alice", "incident.ack", "incident:2", {}, now=201.0)
    checkpointer.stop()
    entries = store.audit_entries()
    assert [(e.seq, e.hash) for e in entries[:3]] == before, "existing rows are never rewritten"
    assert [e.action for e in entries[3:]] == [KEYED_MARKER, "incident.ack", "incident.ack"]
    assert entries[3].detail == {"algorithm": "hmac-sha256", "key_id": store.audit_key.key_id}
    assert verify_chain(entries, store.audit_key).keyed_from == 4
    store.close()

    assert main(["audit", "verify", "--store", url, "--key-env", KEY_ENV,
                 "--checkpoint-file", str(tmp_path / "audit.checkpoints")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("audit log OK: 6 entries (seq 1-6)")
    assert "seq 1-3 predate keying (legacy, plain SHA-256); keyed (hmac-sha256) from seq 4" in out
    assert "not keyed" not in out
