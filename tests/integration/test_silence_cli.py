"""`vigil silence add|list|expire` as a person types it, on the store the daemon reads."""
from __future__ import annotations

import json

import pytest

from monitor.cli import main
from monitor.store.repository import Store

pytestmark = pytest.mark.integration


def test_add_list_expire_from_the_terminal_and_the_audit_log_says_who(tmp_path, capsys):
    store = f"sqlite:///{tmp_path / 'vigil.db'}"
    assert main(["silence", "add", "--store", store, 'model="recommender"', "severity=~warn.*",
                 "--duration", "2h", "--comment", "reindex, OPS-7", "--actor", "alice", "--json"]) == 0
    made = json.loads(capsys.readouterr().out)
    assert made["status"]["state"] == "active" and made["ends_at"] - made["starts_at"] == pytest.approx(7200)
    assert main(["silence", "list", "--store", store, "--state", "active"]) == 0
    out = capsys.readouterr().out
    assert 'model="recommender"' in out and "by alice: reindex, OPS-7" in out and "active" in out

    assert main(["silence", "expire", str(made["id"]), "--store", store, "--actor", "alice"]) == 0
    assert "expired" in capsys.readouterr().out
    assert main(["silence", "list", "--store", store, "--state", "active", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"items": [], "total": 0, "next": None}
    actions = [(e.action, e.actor) for e in Store(store).audit_entries()]
    assert actions == [("silence.create", "cli:alice"), ("silence.expire", "cli:alice")]


def test_a_bad_matcher_is_refused_naming_it(tmp_path, capsys):
    store = f"sqlite:///{tmp_path / 'vigil.db'}"
    assert main(["silence", "add", "--store", store, "model~recommender", "--comment", "x"]) == 64
    err = capsys.readouterr().err
    assert "matchers[0]" in err and "OP one of" in err
    assert main(["silence", "expire", "42", "--store", store]) == 1
    assert "silence 42 not found" in capsys.readouterr().err
