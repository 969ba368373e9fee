"""A command that reads or audits an existing store, pointed at a SQLite file that does not
exist (a typo, a backup restored elsewhere), says so and exits 75 like any store it cannot
reach. It used to create an empty store there and answer from it: `vigil audit verify`
printed "audit log OK: no entries" (exit 0) for a file that was never there, and `vigil
outbox list` "nothing waits in the outbox"; `vigil silence expire` answered "not found"
from it and `vigil outbox drop` "0 message(s) dropped". (`vigil silence add` still makes
the store: a silence may be set before the daemon's first start.)"""
from __future__ import annotations

import pytest

from monitor.cli import main

COMMANDS = [
    ["audit", "verify"],
    ["status"],
    ["outbox", "list"],
    ["silence", "list"],
    ["db", "purge", "--dry-run"],
    ["silence", "expire", "3"],
    ["outbox", "drop", "--notifier", "pagerduty", "--reason", "receiver removed", "--force"],
]


@pytest.mark.parametrize("argv", COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_a_store_file_that_does_not_exist_is_refused_not_created(argv, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    typo = tmp_path / "vigil-restored.db"
    if argv[0] == "db":  # purge takes the store from a config only
        (tmp_path / "vigil.yaml").write_text(f"store: {{url: 'sqlite:///{typo}'}}\nmodels: [{{name: recommender}}]\n")
        code = main([*argv, "--config", "vigil.yaml"])
    else:
        code = main([*argv, "--store", f"sqlite:///{typo}"])
    err = capsys.readouterr().err
    assert code == 75
    assert str(typo) in err and "no such" in err.lower()
    assert not typo.exists()


def test_an_existing_store_is_still_read(tmp_path, monkeypatch, capsys):
    from monitor.store.repository import Store

    monkeypatch.chdir(tmp_path)
    Store(f"sqlite:///{tmp_path / 'vigil.db'}").close()  # the daemon's first start made it
    assert main(["audit", "verify", "--store", f"sqlite:///{tmp_path / 'vigil.db'}"]) == 0
    assert "audit log OK" in capsys.readouterr().out


def test_db_current_says_a_missing_file_is_missing_and_creates_nothing(tmp_path, monkeypatch, capsys):
    """Before a first start the answer is still "nothing to upgrade" (exit 0, as for an empty
    store), but the path is named as missing and no empty file is left behind."""
    monkeypatch.chdir(tmp_path)
    typo = tmp_path / "vigil-restored.db"
    assert main(["db", "current", "--store", f"sqlite:///{typo}"]) == 0
    out = capsys.readouterr().out
    assert "no such SQLite file" in out and str(typo) in out, out
    assert not typo.exists()
