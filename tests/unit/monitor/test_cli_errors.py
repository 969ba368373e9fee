"""The command line's answers to things a person gets wrong or cannot help: one line that
says what, and an exit code a script can act on; never a traceback."""
from __future__ import annotations

import pytest
import yaml
from sqlalchemy.exc import OperationalError

import monitor.cli_store as cli_store
from monitor.cli import main


def test_an_unreachable_store_database_is_one_line_and_exit_75_without_the_password(tmp_path, capsys):
    path = tmp_path / "vigil.yaml"
    path.write_text(yaml.safe_dump({
        "store": {"url": "postgresql+psycopg://vigil:hunter2-secret@127.0.0.1:1/vigil"},  # nothing listens on port 1
        "sources": {"prometheus": {"url": "http://127.0.0.1:9"}, "mlflow": {"tracking_uri": "http://127.0.0.1:9"}},
        "models": [{"name": "m", "kpis": []}]}))
    assert main(["status", "--config", str(path)]) == 75
    err = capsys.readouterr().err
    assert err.startswith("vigil status: cannot reach the store's database:") and "Traceback" not in err
    assert "hunter2" not in err and len(err.splitlines()) == 1


def test_an_unknown_log_level_is_refused_by_name(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--log-level", "verbose", "status"])
    assert e.value.code == 2 and "invalid choice: 'VERBOSE'" in capsys.readouterr().err


def test_a_store_error_without_a_driver_message_is_still_one_line(monkeypatch, capsys):
    def unreachable(args: object) -> int:
        raise OperationalError("SELECT 1", {}, Exception(""))

    monkeypatch.setattr(cli_store, "cmd_status", unreachable)
    assert main(["status", "--store", "sqlite:///nowhere.db"]) == 75
    err = capsys.readouterr().err
    assert err.startswith("vigil status: cannot reach the store's database:") and len(err.splitlines()) == 1


def test_a_store_behind_this_vigil_names_the_upgrade_not_an_unreachable_database(tmp_path, capsys):
    """Vigil upgraded, `vigil db upgrade` not run yet: the daemon refuses naming the upgrade
    (exit 78); the other commands said the database "cannot be reached" (exit 75, try again
    later) over a missing table, so a script retried for ever and a person looked for an outage."""
    url = f"sqlite:///{tmp_path / 'vigil.db'}"
    assert main(["db", "upgrade", "--store", url, "--revision", "0002_drift_report_gzip"]) == 0
    capsys.readouterr()
    for argv in (["status", "--store", url], ["silence", "list", "--store", url],
                 ["silence", "add", 'model="m"', "--comment", "OPS-1", "--store", url]):
        assert main(argv) == 78, argv
        err = capsys.readouterr().err
        assert "cannot reach" not in err and "Traceback" not in err, argv
        assert "this Vigil needs" in err and f"vigil db upgrade --store '{url}'" in err, argv
        assert len(err.splitlines()) == 1


def test_a_grafana_url_without_its_scheme_is_refused_as_such_not_as_grafana_down(tmp_path, capsys):
    """`--grafana-url grafana:3000` said "Grafana is unreachable ... Run it again when Grafana
    is up" (exit 2): a person waited for an outage that was a typo."""
    path = tmp_path / "vigil.yaml"
    path.write_text(yaml.safe_dump({"store": {"url": f"sqlite:///{tmp_path / 'vigil.db'}"},
                                    "models": [{"name": "m", "kpis": []}]}))
    with pytest.raises(SystemExit) as refused:
        main(["dashboards", "--config", str(path), "--grafana-url", "grafana:3000"])
    assert refused.value.code == 2
    err = capsys.readouterr().err
    assert "--grafana-url" in err and "http:// or https://" in err and "unreachable" not in err


@pytest.mark.parametrize("argv", [["status"], ["db", "current"], ["audit", "verify"], ["silence", "list"],
                                  ["outbox", "list"]])
@pytest.mark.parametrize("url", ["postgres://vigil@127.0.0.1:1/vigil", "vigil.db"])
def test_a_store_url_vigil_cannot_open_is_one_line_naming_the_forms_it_takes(argv, url, capsys):
    """`--store postgres://...` (Heroku's spelling) or a bare file name was a SQLAlchemy
    traceback; it is refused as store.url is, naming the two forms."""
    with pytest.raises(SystemExit) as refused:
        main([*argv, "--store", url])
    assert refused.value.code == 2
    err = capsys.readouterr().err
    assert "--store" in err and "postgresql+psycopg://" in err and "Traceback" not in err


@pytest.mark.parametrize("argv, option", [
    (["silence", "expire", "99999999999999999999"], "id"),
    (["silence", "expire", "0"], "id"),
    (["silence", "list", "--limit", "99999999999999999999"], "--limit"),
    (["silence", "list", "--limit", "0"], "--limit"),
    (["rollback", "recommender", "--config", "vigil.yaml", "--reason", "ctr dropped",
      "--incident", "99999999999999999999"], "--incident"),
])
def test_an_id_or_limit_out_of_range_is_refused_naming_it(tmp_path, capsys, argv, option):
    """As the API's 422: a 20-digit silence id or --limit was an OverflowError traceback from
    the store's driver (SQLite integers are 64-bit), `--limit 0` listed nothing."""
    store = f"sqlite:///{tmp_path / 'vigil.db'}"
    assert main(["silence", "add", "--store", store, 'model="recommender"', "--comment", "OPS-42"]) == 0
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main(argv + (["--store", store] if argv[0] == "silence" else []))
    err = capsys.readouterr().err
    assert e.value.code == 2 and f"argument {option}:" in err and "expected" in err, err


def test_a_refused_store_url_is_not_echoed_with_its_password(capsys):
    """deploy/kubernetes/migrate-job.yaml passes the Secret's store URL as `--store`: one in
    Heroku's spelling was refused with the whole URL quoted, password and all, into the Job's
    log (and the cluster's log store)."""
    with pytest.raises(SystemExit) as refused:
        main(["db", "upgrade", "--store", "postgres://vigil:S3cretPW@db.example:5432/vigil"])
    assert refused.value.code == 2
    err = capsys.readouterr().err
    assert "S3cretPW" not in err and "postgres://vigil:***@db.example:5432/vigil" in err


@pytest.mark.parametrize("command", [["silence", "list"], ["silence", "expire", "3"], ["outbox", "list"],
                                     ["silence", "add", "model=m", "--comment", "OPS-42"]])
def test_a_command_run_where_no_vigil_yaml_is_says_to_give_config_or_store(command, tmp_path, monkeypatch, capsys):
    """`vigil silence list` away from the config said '(file): cannot read vigil.yaml' with
    exit 2, as if a given file were broken; status, audit verify and db name the option (64)."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as e:
        main(command)
    assert e.value.code == 64
    assert capsys.readouterr().err == (f"vigil {' '.join(command[:2])}: no vigil.yaml in this directory (the "
                                       "default of --config): give --config FILE or --store URL\n")


@pytest.mark.parametrize("step", ["0s", "0"])
def test_a_replay_step_of_zero_is_refused_naming_it(tmp_path, capsys, step):
    """`--step 0s` replayed at schedule.interval without a word (0 read as "not given")."""
    (tmp_path / "vigil.yaml").write_text("models: [{name: m}]\n")
    with pytest.raises(SystemExit) as refused:
        main(["replay", "--config", str(tmp_path / "vigil.yaml"), "--from", "2026-01-01T00:00:00Z",
              "--to", "2026-01-01T00:10:00Z", "--step", step, "--out", str(tmp_path / "incidents.jsonl"), "--quiet"])
    assert refused.value.code == 2
    err = capsys.readouterr().err
    assert f"argument --step: expected a duration above 0, such as '1m', got '{step}'" in err, err
    assert not (tmp_path / "incidents.jsonl").exists()


@pytest.mark.parametrize("seq", ["-3", "99999999999999999999", "ten"])
def test_an_expected_audit_seq_out_of_range_is_refused_naming_it(tmp_path, capsys, seq):
    """`vigil audit verify --expect-seq -3` verified the log as if nothing had been expected: a
    typo (or a negative PromQL result pasted in) turned off the check for deleted entries."""
    store = f"sqlite:///{tmp_path / 'vigil.db'}"
    with pytest.raises(SystemExit) as refused:
        main(["audit", "verify", "--store", store, "--expect-seq", seq])
    assert refused.value.code == 2
    err = capsys.readouterr().err
    assert "argument --expect-seq: expected the audit log's last seq, a whole number from 0 to" in err, err
    assert seq in err
