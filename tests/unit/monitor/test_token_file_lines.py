"""A token file that cannot be used is reported like every other config error: the config
file, the line of the `token_file:` key, the field (check-config and a refused reload)."""
from __future__ import annotations

import hashlib
import logging

import pytest

from monitor.cli import main
from monitor.config import ConfigError, parse_config
from monitor.identities import load_token_table
from monitor.reload import read_valid

CONFIG = """\
models:
  - name: m
api:
  tokens:
    - name: ci
      role: viewer
      token_file: missing.token
    - name: ops
      role: operator
      token_file: empty.token
  tokens_file: nowhere.txt
"""


def test_check_config_names_the_line_of_an_unreadable_or_empty_token_file(tmp_path, capsys):
    path = tmp_path / "vigil.yaml"
    path.write_text(CONFIG)
    (tmp_path / "empty.token").write_text("\n")

    assert main(["check-config", str(path)]) == 1

    err = capsys.readouterr().err
    assert f"{path}: 3 error(s)" in err, err
    assert f"{path}:7: api.tokens[0](ci): token_file: cannot read {tmp_path / 'missing.token'}" in err, err
    assert f"{path}:10: api.tokens[1](ops): token_file: {tmp_path / 'empty.token'} is empty" in err, err
    assert f"{path}:11: api.tokens_file: cannot read {tmp_path / 'nowhere.txt'}" in err, err


def test_a_refused_reload_names_the_line_of_the_token_file_too(tmp_path, caplog):
    path = tmp_path / "vigil.yaml"
    path.write_text(CONFIG)
    (tmp_path / "empty.token").write_text("")

    with caplog.at_level(logging.ERROR, logger="vigil.daemon"):
        assert read_valid(str(path)) is None

    (record,) = [r for r in caplog.records if "reload refused" in r.getMessage()]
    assert f"{path}:7: api.tokens[0](ci): token_file: cannot read" in record.getMessage()


def test_check_config_warns_of_an_unreadable_receiver_secret_file_at_its_line(tmp_path, capsys):
    path = tmp_path / "vigil.yaml"
    path.write_text("models:\n  - name: m\nreceivers:\n  - name: pd\n    kind: pagerduty\n"
                    "    routing_key_file: missing.key\n")

    assert main(["check-config", str(path)]) == 0  # a warning: its pages wait in the outbox until it is there

    err = capsys.readouterr().err
    assert f"{path}:6: warning: receivers[pd].routing_key_file: cannot read" in err, err


def test_a_receiver_secret_file_that_is_not_utf8_is_a_warning_not_a_traceback(tmp_path, capsys):
    """A key saved as UTF-16 (a Windows editor's "Unicode"): check-config, and the daemon at
    start, died with a UnicodeDecodeError traceback; each send would have failed alike."""
    from alerts.receivers.http import SecretMissing, SecretSource

    (tmp_path / "pd.key").write_bytes("R0UTINGKEY".encode("utf-16"))
    path = tmp_path / "vigil.yaml"
    path.write_text("models:\n  - name: m\nreceivers:\n  - name: pd\n    kind: pagerduty\n"
                    "    routing_key_file: pd.key\n")

    assert main(["check-config", str(path)]) == 0

    err = capsys.readouterr().err
    assert f"{path}:6: warning: receivers[pd].routing_key_file:" in err and "UTF-8" in err, err
    try:
        SecretSource("the key", file=tmp_path / "pd.key").read()
    except SecretMissing as e:
        assert "not UTF-8" in str(e) and "R0UTINGKEY" not in str(e)
    else:
        raise AssertionError("read a UTF-16 file as a key")


def test_a_serving_webhook_or_api_token_file_that_is_not_utf8_is_named_not_a_traceback(tmp_path, capsys):
    (tmp_path / "hook.secret").write_bytes("s3cret".encode("utf-16"))
    path = tmp_path / "vigil.yaml"
    path.write_text('models:\n  - name: m\n    serving: {kind: webhook, url: "https://d/r", verify_url: "https://d/s",'
                    ' secret_file: hook.secret}\n')
    assert main(["check-config", str(path)]) == 0
    err = capsys.readouterr().err
    assert f"{path}:3: warning: models[m].serving:" in err and "not UTF-8" in err, err

    (tmp_path / "ci.token").write_bytes("t0ken".encode("utf-16"))
    path.write_text("models:\n  - name: m\napi:\n  tokens:\n    - {name: ci, role: viewer, token_file: ci.token}\n")
    assert main(["check-config", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"{path}:5: api.tokens[0](ci): token_file: {tmp_path / 'ci.token'} is not UTF-8" in err, err


def test_a_line_of_the_tokens_file_may_scope_its_token_to_models(tmp_path):
    """A fourth word on a `name role sha256` line is the token's models, comma-separated patterns
    (as `api.tokens[].models`); before, such a line was refused and only the YAML form could scope."""
    sha = {n: hashlib.sha256(n.encode()).hexdigest() for n in ("team-a-token", "ops-token")}
    (tmp_path / "tokens.txt").write_text(f"team-a operator {sha['team-a-token']} team-a-*,fraud-scorer  # team A\n"
                                         f"ops operator {sha['ops-token']}\n")
    cfg = parse_config({"api": {"tokens_file": "tokens.txt"}, "models": [{"name": "m"}]}, base_dir=str(tmp_path))
    table = load_token_table(cfg)
    team_a, ops = table.resolve("team-a-token"), table.resolve("ops-token")
    assert team_a is not None and ops is not None
    assert [team_a.may_act_on(m) for m in ("team-a-ranker", "fraud-scorer", "team-b-churn")] == [True, True, False]
    assert ops.may_act_on("team-b-churn")  # no fourth word: every model, as before


@pytest.mark.parametrize("models, words", [
    ("team-a-*,", "models: a pattern is empty"),
    ("team-a-* fraud-scorer", "expected `name role sha256 [models]`"),
])
def test_a_bad_models_word_names_the_line_and_what_was_expected(tmp_path, models, words):
    (tmp_path / "tokens.txt").write_text(f"# name role sha256 [models]\nteam-a operator {'a' * 64} {models}\n")
    cfg = parse_config({"api": {"tokens_file": "tokens.txt"}, "models": [{"name": "m"}]}, base_dir=str(tmp_path))
    with pytest.raises(ConfigError) as e:
        load_token_table(cfg)
    msg = dict(e.value.errors)[f"{tmp_path / 'tokens.txt'}:2"]
    assert words in msg and "team-a-*,fraud-scorer" in msg, msg


def test_vigil_token_hash_prints_a_scoped_line_that_the_tokens_file_takes(tmp_path, monkeypatch, capsys):
    """`vigil token hash --name --role` prints a tokens_file line; `--models` adds the scope word,
    so a scoped line is made as an unscoped one is, never typed by hand."""
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("team-a-token\n"))
    assert main(["token", "hash", "--name", "team-a", "--role", "operator", "--models", "team-a-*,fraud-scorer"]) == 0
    line = capsys.readouterr().out
    assert line.split()[3:] == ["team-a-*,fraud-scorer"], line
    (tmp_path / "tokens.txt").write_text(line)
    cfg = parse_config({"api": {"tokens_file": "tokens.txt"}, "models": [{"name": "m"}]}, base_dir=str(tmp_path))
    who = load_token_table(cfg).resolve("team-a-token")
    assert who is not None and who.may_act_on("fraud-scorer") and not who.may_act_on("team-b-churn")

    for args in (["--name", "team-a", "--models", "team-a-*,"], ["--models", "team-a-*"]):
        monkeypatch.setattr("sys.stdin", io.StringIO("team-a-token\n"))
        assert main(["token", "hash", *args]) == 64
        out = capsys.readouterr()
        assert out.out == "" and "--models" in out.err, out.err
