"""`vigil silence add|list|expire` as a person types it, on the store the daemon reads."""
from __future__ import annotations

import json
from pathlib import Path

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


def test_duration_and_end_together_are_refused_naming_both(tmp_path, capsys):
    """`--duration 1h --end T` made a silence to T: the duration was dropped without a word
    (the README gives them as one or the other)."""
    import time

    store = f"sqlite:///{tmp_path / 'vigil.db'}"
    end = str(int(time.time()) + 3 * 3600)
    with pytest.raises(SystemExit) as refused:
        main(["silence", "add", "--store", store, 'model="recommender"', "--comment", "reindex, OPS-7",
              "--duration", "1h", "--end", end])
    assert refused.value.code == 2
    assert "argument --end: not allowed with argument --duration" in capsys.readouterr().err
    assert not (tmp_path / "vigil.db").exists()  # nothing made
    assert main(["silence", "add", "--store", store, 'model="recommender"', "--comment", "reindex, OPS-7",
                 "--json"]) == 0  # neither: 2 hours, as before
    made = json.loads(capsys.readouterr().out)
    assert made["ends_at"] - made["starts_at"] == pytest.approx(7200)


@pytest.mark.parametrize("given, said", [
    (["--end", "2020-01-01T00:00:00Z"], "vigil silence add: --end: expected a time after --start"),
    (["--start", "tomorrow"], "vigil silence add: --start: expected RFC3339"),
    (["--duration", "0s"], "vigil silence add: --duration: expected a duration above 0"),
    (["--comment", " "], "vigil silence add: --comment: expected why"),
])
def test_a_refused_silence_names_the_option_typed_not_the_apis_field(tmp_path, capsys, given, said):
    """The command said `ends_at: expected a time after starts_at`: the API's fields, which
    a person at a terminal never typed."""
    store = f"sqlite:///{tmp_path / 'vigil.db'}"
    args = ["silence", "add", "--store", store, 'model="recommender"', "--comment", "reindex, OPS-7", *given]
    assert main(args) == 64
    err = capsys.readouterr().err
    assert err.startswith(said), err


def _keyed_config(tmp_path) -> str:
    import yaml

    from monitor.config import load_config
    from tests.helpers_vigil import make_vigil

    (tmp_path / "audit.key").write_text("a-key-file-with-enough-bytes\n")
    (tmp_path / "vigil.yaml").write_text(yaml.safe_dump({
        "store": {"url": f"sqlite:///{tmp_path / 'vigil.db'}"}, "audit": {"key_file": "audit.key"},
        "models": [{"name": "recommender"}]}))
    vigil = make_vigil(load_config(tmp_path / "vigil.yaml"), notifiers={})
    vigil.store.audit("alice", "incident.ack", "incident:1", {})  # the daemon keyed the chain
    vigil.checkpoints.stop()
    return str(tmp_path / "vigil.yaml")


def test_a_silence_from_the_terminal_keeps_a_keyed_audit_log_verifiable(tmp_path, capsys):
    config = _keyed_config(tmp_path)
    assert main(["silence", "add", "--config", config, 'model="recommender"', "--comment", "x"]) == 0
    capsys.readouterr()
    assert main(["audit", "verify", "--config", config]) == 0, capsys.readouterr().err
    assert "audit log OK" in capsys.readouterr().out


def test_a_silence_without_the_audit_key_is_refused_before_anything_is_written(tmp_path, capsys):
    config = _keyed_config(tmp_path)
    store = f"sqlite:///{tmp_path / 'vigil.db'}"
    assert main(["silence", "add", "--store", store, 'model="recommender"', "--comment", "x"]) == 2
    err = capsys.readouterr().err
    assert "keyed" in err and "--config" in err
    assert main(["silence", "list", "--store", store, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["total"] == 0
    assert main(["audit", "verify", "--config", config]) == 0


def test_a_daemon_started_without_the_key_of_a_keyed_audit_log_says_so(tmp_path, caplog):
    import yaml

    from monitor.config import load_config
    from tests.helpers_vigil import make_vigil

    config = Path(_keyed_config(tmp_path))
    raw = yaml.safe_load(config.read_text())
    del raw["audit"]
    config.write_text(yaml.safe_dump(raw))
    caplog.set_level("WARNING", logger="vigil.audit")
    vigil = make_vigil(load_config(config), notifiers={})
    vigil.checkpoints.stop()
    assert any("keyed" in r.getMessage() and "audit.key_env" in r.getMessage() for r in caplog.records)


def test_a_silence_stored_in_python_regex_syntax_is_listed_with_its_problem(tmp_path, capsys):
    """Stored by an older Vigil in Python's regex syntax (RE2 refuses it): listed, with what
    is wrong and what to do, not a traceback nor a silence missing from the list."""
    import time

    from monitor.store import silences

    url = f"sqlite:///{tmp_path / 'vigil.db'}"
    assert main(["db", "upgrade", "--store", url]) == 0
    now = time.time()
    with Store(url).tx() as s:
        s.add(silences.SilenceRow(matchers=[{"name": "model", "value": r"(rec)\1", "isRegex": True,
                                             "isEqual": True}], starts_at=now - 60, ends_at=now + 3600,
                                  created_by="olga", comment="OPS-7", created_at=now - 60, updated_at=now - 60))
    capsys.readouterr()
    assert main(["silence", "list", "--store", url]) == 0
    out = capsys.readouterr().out
    assert "by olga: OPS-7" in out and "problem: matchers[0]: invalid regular expression" in out, out
    assert main(["silence", "list", "--store", url, "--json"]) == 0
    [item] = json.loads(capsys.readouterr().out)["items"]
    assert "invalid escape sequence: \\1" in item["problem"], item
