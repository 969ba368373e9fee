"""`vigil check-config` on a file with an unset `${VAR}` still reads the API tokens and the audit
key: every problem `vigil run` would refuse the file for, in one run, each at its line (the
tokens and the key used to be read only once every variable was set: a second run, and a
third after fixing what the second one found)."""
from __future__ import annotations

import textwrap

from monitor.cli import main

CONFIG = """\
sources:
  prometheus: {url: "${PROM_URL_UNSET_9F}"}
  mlflow: {tracking_uri: http://127.0.0.1:9}
api:
  tokens:
    - {name: oncall, role: operator, token: "${ONCALL_TOKEN_UNSET_9F}"}
    - name: ci
      role: viewer
      token_file: missing-ci.token
audit:
  key_file: missing-audit.key
models:
  - name: recommender
"""


def test_an_unset_variable_and_an_unreadable_token_file_are_both_reported_in_one_run(tmp_path, capsys, monkeypatch):
    for name in ("PROM_URL_UNSET_9F", "ONCALL_TOKEN_UNSET_9F"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "vigil.yaml"
    path.write_text(CONFIG)
    assert main(["check-config", str(path)]) == 1  # as before: errors
    err = capsys.readouterr().err
    lines = [line.strip() for line in err.splitlines()]
    assert f"{path}: 4 error(s)" in lines, err
    assert any(line.startswith(f"{path}:2: sources.prometheus.url: environment variable PROM_URL_UNSET_9F is not set")
               for line in lines), err
    assert any(line.startswith(f"{path}:6: api.tokens[0](oncall).token: environment variable ONCALL_TOKEN_UNSET_9F")
               for line in lines), err
    assert any(line.startswith(f"{path}:9: api.tokens[1](ci): token_file: cannot read {tmp_path / 'missing-ci.token'}")
               for line in lines), err
    assert any(line.startswith(f"{path}:11: audit.key_file:") and "missing-audit.key" in line for line in lines), err


def test_a_secret_read_from_an_unset_variable_is_said_once_as_that_variable(tmp_path, capsys, monkeypatch):
    """The token file's and the key file's names come from unset variables: the variables are
    the problem, not files named after a stand-in."""
    monkeypatch.delenv("TOKENS_FILE_UNSET_9F", raising=False)
    monkeypatch.delenv("KEY_FILE_UNSET_9F", raising=False)
    path = tmp_path / "vigil.yaml"
    path.write_text(textwrap.dedent("""\
        api:
          tokens_file: "${TOKENS_FILE_UNSET_9F}"
          tokens:
            - name: ci
              role: viewer
              token_file: missing-ci.token
        audit: {key_file: "${KEY_FILE_UNSET_9F}"}
        models: [{name: m}]
        """))
    assert main(["check-config", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"{path}: 3 error(s)" in err, err
    assert f"{path}:2: api.tokens_file: environment variable TOKENS_FILE_UNSET_9F is not set" in err
    assert f"{path}:6: api.tokens[0](ci): token_file: cannot read" in err
    assert f"{path}:7: audit.key_file: environment variable KEY_FILE_UNSET_9F is not set" in err


def test_a_broken_api_section_is_reported_as_it_was_without_a_guess_at_its_tokens(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("PROM_URL_UNSET_9F", raising=False)
    path = tmp_path / "vigil.yaml"
    path.write_text(textwrap.dedent("""\
        sources: {prometheus: {url: "${PROM_URL_UNSET_9F}"}}
        api:
          port: 99999
          tokens: [{name: ci, role: viewer, token_file: missing-ci.token}]
        audit: {key_file: missing-audit.key}
        models: [{name: m}]
        """))
    assert main(["check-config", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"{path}: 3 error(s)" in err, err  # the variable, the port, the audit key
    assert "api.port" in err and "missing-audit.key" in err and "missing-ci.token" not in err
