"""`vigil audit verify` against the tampering issue 12 found it blind to: each test
tampers with a keyed, checkpointed SQLite store the way someone with write access to the
database (and not the key) would, and expects exit 1 naming the first bad seq or the
checkpoint line that disagrees. Before keyed chains and checkpoints, each printed OK."""
from __future__ import annotations

import json

import pytest

from monitor.cli import main
from tests.unit.audit.helpers import Audited, audited_store, verify_args


@pytest.fixture
def audited(tmp_path) -> Audited:
    a = audited_store(tmp_path)
    yield a
    a.store.close()


def broken(capsys, a: Audited, **kw) -> str:
    assert main(verify_args(a, **kw)) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    return captured.err


def test_an_untouched_log_verifies(audited, capsys):
    assert main(verify_args(audited)) == 0
    out = capsys.readouterr().out
    assert out.startswith("audit log OK: 7 entries (seq 1-7)")  # the `audit.keyed` marker, then 6 entries
    assert "not keyed" not in out and "note:" not in out


def test_deleting_the_newest_row_is_a_deleted_tail(audited, capsys):
    audited.sql("delete from audit_log where seq = 7")
    err = broken(capsys, audited)
    assert "the log ends at seq 6, but checkpoint line 1" in err and "says seq 7" in err
    assert "entries after seq 6 were deleted" in err


def test_truncating_to_one_row_is_a_deleted_tail(audited, capsys):
    audited.sql("delete from audit_log where seq > 1")
    err = broken(capsys, audited)
    assert "the log ends at seq 1, but checkpoint line 1" in err and "says seq 7" in err


def test_deleting_every_row_is_a_wipe(audited, capsys):
    audited.sql("delete from audit_log")
    err = broken(capsys, audited)
    assert "the log is empty, but checkpoint line 1" in err and "counted 7 entries up to seq 7" in err
    assert "wiped" in err


def test_a_rewrite_rehashed_with_the_public_entry_hash_fails_the_hmac(audited, capsys):
    audited.rewrite_and_rehash(3, actor="mallory")
    err = broken(capsys, audited)
    assert err.startswith("audit log BROKEN at seq 3: ")
    assert "re-hashed without the key" in err


def test_a_rewrite_rehashed_to_the_end_fails_even_past_the_newest_checkpoint(audited, capsys):
    audited.store.audit("bob", "incident.silence", "incident:9", {}, now=2000.0)  # seq 8: no checkpoint covers it
    audited.rewrite_and_rehash(8, actor="mallory")
    assert "BROKEN at seq 8" in broken(capsys, audited)


def test_an_edited_checkpoint_fails_its_signature(audited, capsys):
    """Cutting the tail and editing the checkpoint to match the shorter log."""
    audited.sql("delete from audit_log where seq > 4")
    [(new_head,)] = audited.sql("select hash from audit_log where seq = 4")
    line = json.loads(audited.checkpoint_file.read_text())
    line.update(count=4, head_seq=4, head_hash=new_head)
    audited.checkpoint_file.write_text(json.dumps(line) + "\n")
    err = broken(capsys, audited)
    assert "checkpoint line 1: its signature does not match its content: the file was edited" in err


def test_an_unsigned_line_after_signed_ones_is_an_edit(audited, capsys):
    line = json.loads(audited.checkpoint_file.read_text())
    line.update(key_id=None, sig=None, head_seq=1, count=1)
    with audited.checkpoint_file.open("a") as f:
        f.write(json.dumps(line) + "\n")
    assert "checkpoint line 2: unsigned, after signed lines" in broken(capsys, audited)


def test_the_wrong_key_is_named(audited, capsys, monkeypatch):
    monkeypatch.setenv("OTHER_KEY", "another-key-of-at-least-16-bytes")
    assert main(["audit", "verify", "--store", audited.url, "--key-env", "OTHER_KEY"]) == 1
    err = capsys.readouterr().err
    assert "BROKEN at seq 1" in err and "keyed with key" in err


def test_without_the_key_verify_checks_links_and_says_what_it_cannot_see(audited, capsys):
    audited.rewrite_and_rehash(3, actor="mallory")
    # Links re-made, content unverifiable without the key: but the checkpoint's head hash differs.
    err = broken(capsys, audited, key=False)
    assert "checkpoint line 1" in err and "says seq 7 has hash" in err and "were rewritten" in err
    assert "not keyed: without a key" in err


def test_an_unkeyed_log_rehashed_is_caught_by_its_checkpoint(tmp_path, capsys):
    a = audited_store(tmp_path, keyed=False)
    a.rewrite_and_rehash(2, actor="mallory")
    err = broken(capsys, a, key=False)
    assert "checkpoint line 1" in err and "says seq 6 has hash" in err
    a.store.close()
