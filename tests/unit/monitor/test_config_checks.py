"""What `vigil check-config` catches beyond types: URLs Vigil has no client for, a model's
policy merged over the global one, unknown keys with their line and a likely spelling,
and `vigil run` / `vigil serve` refusing a bad file the same way."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from monitor.cli import main
from monitor.config import ConfigError, load_config, parse_config


def errors_of(data: dict) -> dict[str, str]:
    with pytest.raises(ConfigError) as e:
        parse_config(data)
    return dict(e.value.errors)


def write(tmp_path, text: str):
    f = tmp_path / "vigil.yaml"
    f.write_text(textwrap.dedent(text).lstrip())
    return f


# --------------------------------------------------------------------------- URLs
def test_a_tracking_uri_the_registry_client_cannot_use_is_refused():
    for uri in ("databricks", "databricks://profile", "file:///tmp/mlruns", "sqlite:///", "mlflow:5000"):
        msg = errors_of({"sources": {"mlflow": {"tracking_uri": uri}}, "models": [{"name": "m"}]})[
            "sources.mlflow.tracking_uri"]
        assert "http(s)://host:port" in msg and "sqlite:///path/to/mlflow.db" in msg and repr(uri) in msg
    for uri in ("http://mlflow:5000", "https://mlflow.example.com", "sqlite:///mlflow.db", "sqlite:////abs/m.db"):
        assert parse_config({"sources": {"mlflow": {"tracking_uri": uri}}, "models": [{"name": "m"}]})


def test_databricks_fails_check_config_and_run_without_a_traceback(tmp_path, capsys):
    f = write(tmp_path, """
        sources:
          mlflow:
            tracking_uri: databricks
        models:
          - name: m
        """)
    assert main(["check-config", str(f)]) == 1
    checked = capsys.readouterr().err
    assert f"{f}:3: sources.mlflow.tracking_uri: expected http(s)://host:port" in checked
    for command in (["run", "--no-api"], ["serve"]):
        with pytest.raises(SystemExit) as e:
            main([*command, "--config", str(f)])
        assert e.value.code not in (0, None)
        err = capsys.readouterr().err
        assert err == checked and "Traceback" not in err


def test_urls_with_a_fixed_set_of_schemes():
    errs = errors_of({"sources": {"prometheus": {"url": "prometheus:9090"}, "loki": {"url": "ftp://loki"},
                                  "tempo": {"url": "http://"}},
                      "store": {"url": "mysql://db/vigil"}, "grafana": {"url": "grafana:3000"},
                      "models": [{"name": "m"}]})
    for field in ("sources.prometheus.url", "sources.loki.url", "sources.tempo.url", "grafana.url"):
        assert "expected an http:// or https:// URL with a host" in errs[field]
    assert "sqlite:///path/to/vigil.db or postgresql+psycopg://" in errs["store.url"]
    assert "postgresql+psycopg://" in errors_of({"store": {"url": "postgresql://u@db/v"},
                                                 "models": [{"name": "m"}]})["store.url"]
    for url in ("sqlite:///vigil.db", "sqlite://", "postgresql+psycopg://vigil@db/vigil"):
        assert parse_config({"store": {"url": url}, "models": [{"name": "m"}]}).store.url == url


def test_a_url_password_is_not_echoed():
    msg = errors_of({"sources": {"prometheus": {"url": "htp://admin:s3cret@prom:9090"}},
                     "models": [{"name": "m"}]})["sources.prometheus.url"]
    assert "s3cret" not in msg and "prom:9090" in msg


# --------------------------------------------------------------------------- policy
GLOBAL = {"drift_warning": 0.05, "drift_critical": 0.3, "rollback": {"cooldown": "1h", "max_per_day": 5}}


def test_a_model_policy_overrides_only_the_keys_it_names():
    cfg = parse_config({"policy": GLOBAL, "models": [{"name": "a", "policy": {"rollback": {"enabled": False}}},
                                                     {"name": "b", "policy": {"drift_warning": 0.2}},
                                                     {"name": "c"}]})
    a, b, c = (cfg.policy_for(cfg.model(n)) for n in "abc")
    assert (a.drift_warning, a.drift_critical) == (0.05, 0.3)
    assert a.rollback.enabled is False and (a.rollback.cooldown, a.rollback.max_per_day) == (3600, 5)
    assert (b.drift_warning, b.drift_critical, b.rollback.enabled) == (0.2, 0.3, True)
    assert c is cfg.policy


def test_policy_errors_point_at_where_they_were_written(tmp_path):
    f = write(tmp_path, """
        policy:
          drift_warning: -1
        models:
          - name: a
            policy:
              rollback: {enabled: true}
          - name: b
            policy:
              drift_critical: 0.5
              rollback:
                max_per_day: many
        """)
    with pytest.raises(ConfigError) as e:
        load_config(f)
    issues = {(i.path, i.line) for i in e.value.issues}
    # the global error once, not again in each model that inherits it
    assert issues == {("policy.drift_warning", 2), ("models[1](b).policy.rollback.max_per_day", 11)}


def test_a_merged_policy_is_still_checked_as_a_whole():
    errs = errors_of({"policy": {"drift_warning": 0.04, "drift_critical": 0.3},
                      "models": [{"name": "a", "policy": {"drift_critical": 0.05}},  # 0.05 >= the global 0.04
                                 {"name": "b", "policy": {"drift_warning": 0.5}}]})  # above the global 0.3
    assert errs == {"models[1](b).policy": "drift_critical (0.3) must be >= drift_warning (0.5)"}


# --------------------------------------------------------------------------- lines and spelling
def test_unknown_keys_have_their_line_and_a_likely_spelling(tmp_path, capsys):
    f = write(tmp_path, """
        schedule:
          interval: 1m
        models:
          - name: recommender
            polcy:
              drift_warning: 0.2
            serving:
              kind: kserve
              namespce: ml
              name: recommender
              storage_uri_template: "s3://m/{version}"
            policy:
              rollback: {enabeld: false}
            zzz: 1
        """)
    assert main(["check-config", str(f)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"{f}: 5 error(s)"
    assert f"  {f}:5: models[0](recommender).polcy: unknown key; did you mean 'policy'?" in err
    assert f"  {f}:9: models[0](recommender).serving.namespce: unknown key; did you mean 'namespace'?" in err
    assert f"  {f}:13: models[0](recommender).policy.rollback.enabeld: unknown key; did you mean 'enabled'?" in err
    assert any(line.startswith(f"  {f}:14: models[0](recommender).zzz: unknown key; expected one of: name, "
                               f"registry_name, alias") for line in err)
    assert f"  {f}:8: models[0](recommender).serving: choose one way to reach the Kubernetes API" not in err


def test_a_missing_key_points_at_its_parent_and_values_keep_saying_what_was_expected(tmp_path):
    f = write(tmp_path, """
        models:
          - name: m
            kpis:
              - name: ctr
                bad_direction: sideways
        """)
    with pytest.raises(ConfigError) as e:
        load_config(f)
    found = {(i.path, i.line): i.message for i in e.value.issues}
    assert found[("models[0](m).kpis[0](ctr).query", 4)] == "required field is missing"
    assert "'down' or 'up'" in found[("models[0](m).kpis[0](ctr).bad_direction", 5)]


def test_a_key_written_twice_is_an_error(tmp_path):
    f = write(tmp_path, """
        policy:
          drift_warning: 0.05
        models:
          - name: m
        policy:
          drift_critical: 0.3
        """)
    with pytest.raises(ConfigError) as e:
        load_config(f)
    assert [tuple(i) for i in e.value.issues] == [
        ("policy", "duplicate key: also on line 1, and YAML keeps only the last one", 5)]


def test_invalid_yaml_has_its_line(tmp_path):
    f = tmp_path / "vigil.yaml"
    f.write_text("models:\n  - name: m\n  bad: [\n")
    with pytest.raises(ConfigError) as e:
        load_config(f)
    [issue] = e.value.issues
    assert issue.message.startswith("invalid YAML") and issue.line is not None
    assert str(e.value).splitlines()[1].startswith(f"  {f}:{issue.line}: invalid YAML")


def test_a_section_written_twice_is_one_error_not_one_per_key_inside_it(tmp_path):
    f = write(tmp_path, """
        policy:
          rollback:
            enabled: false
        models:
          - name: m
        policy:
          rollback:
            enabled: true
        """)
    with pytest.raises(ConfigError) as e:
        load_config(f)
    assert [tuple(i) for i in e.value.issues] == [
        ("policy", "duplicate key: also on line 1, and YAML keeps only the last one", 6)]


def test_a_bad_duration_names_its_value_once(tmp_path):
    f = write(tmp_path, """
        policy:
          cold_start: -5m
        models:
          - name: m
        """)
    with pytest.raises(ConfigError) as e:
        load_config(f)
    [issue] = e.value.issues
    assert str(issue).count("'-5m'") == 1, str(issue)


def test_a_nan_or_infinite_duration_is_a_config_error_naming_the_field(tmp_path):
    """YAML's `.nan` and `.inf` (or a number too long for a float) were taken as durations:
    a NaN interval, cool-down or misfire grace passed every comparison and broke the
    scheduler and the guards at run time, far from the file."""
    for text, field in (("schedule:\n  interval: .nan\n", "schedule.interval"),
                        ("policy:\n  rollback:\n    cooldown: .inf\n", "policy.rollback.cooldown"),
                        ("schedule:\n  misfire_grace: .nan\n", "schedule.misfire_grace"),
                        (f"schedule:\n  baseline: '{'9' * 400}s'\n", "schedule.baseline")):
        f = tmp_path / "vigil.yaml"
        f.write_text(text + "models:\n  - name: m\n")
        with pytest.raises(ConfigError) as e:
            load_config(f)
        found = dict(e.value.errors)
        assert field in found and "finite" in found[field], (text, found)


def test_a_misfire_grace_under_a_second_is_refused_by_check_config(tmp_path):
    """`misfire_grace: 0` (or 500ms) passed check-config, then `vigil run` died at start with
    APScheduler's TypeError (its grace is a positive whole number of seconds), and a SIGHUP
    reload to it left the new config swapped in with half its jobs changed."""
    for value in ("0", "500ms", "0.9"):
        f = tmp_path / "vigil.yaml"
        f.write_text(f"schedule:\n  misfire_grace: {value}\nmodels:\n  - name: m\n")
        with pytest.raises(ConfigError) as e:
            load_config(f)
        msg = dict(e.value.errors)["schedule.misfire_grace"]
        assert "1" in msg and "got" in msg, msg
    f.write_text("schedule:\n  misfire_grace: 1s\nmodels:\n  - name: m\n")
    assert load_config(f).schedule.misfire_grace == 1.0


def test_an_unquoted_slack_channel_is_not_read_as_a_comment(tmp_path):
    """`owner_channel: #recsys-owners` is a YAML comment: the key read as null, check-config
    said OK, and every alert of the model went to the built-in #vigil-alerts instead."""
    f = write(tmp_path, """
        models:
          - name: m
            owner_channel: #recsys-owners
            oncall_channel: "#ml-oncall"   # a real comment
        """)
    with pytest.raises(ConfigError) as e:
        load_config(f)
    [issue] = e.value.issues
    assert issue.path == "models[0](m).owner_channel" and issue.line == 3, issue
    assert "'#recsys-owners'" in issue.message and "quote" in issue.message, issue
    f = write(tmp_path, """
        models:
          - name: m
            owner_channel: "#recsys-owners"
            reference:  # the training reference
              path: null  #none
        """)
    cfg = load_config(f)
    assert cfg.models[0].owner_channel == "#recsys-owners"


def test_a_token_pasted_where_its_hash_goes_is_not_echoed(tmp_path, capsys):
    """The token itself written as `token_sha256:` (an easy slip) was printed back by
    check-config, and by a refused SIGHUP reload into the daemon's log."""
    token = "vigil-live-Zq81xT0pK2mN4bV6cX8z"
    f = write(tmp_path, f"""
        api:
          tokens:
            - {{name: ci, role: viewer, token_sha256: {token}}}
        receivers:
          - {{name: pd, kind: pagerduty, routing_key_env: 12345678901234567890}}
        models:
          - name: m
        """)
    assert main(["check-config", str(f)]) == 1
    err = capsys.readouterr().err
    assert "api.tokens[0](ci).token_sha256" in err and "routing_key_env" in err, err
    assert token not in err and "12345678901234567890" not in err, err


def test_alertmanager_times_and_yes_no_values_read_as_written(tmp_path):
    """YAML 1.1 reads an unquoted 17:30 as the number 1050 (base 60) and NO / off as false:
    time intervals copied from an Alertmanager config (whose YAML 1.2 keeps them strings)
    were refused with `got 1050`, and a label `country: NO` with `got False`."""
    f = write(tmp_path, """
        time_intervals:
          - name: evenings
            time_intervals:
              - {weekdays: [monday], times: [{start_time: 17:30, end_time: 23:59}]}
        grafana:
          provision_on_start: yes
        models:
          - name: m
            labels: {country: NO, paging: off}
            mute_time_intervals: [evenings]
            policy:
              rollback: {enabled: off, dry_run: on}
        """)
    cfg = load_config(f)
    assert cfg.time_intervals[0].time_intervals[0]["times"] == [{"start_time": "17:30", "end_time": "23:59"}]
    assert cfg.models[0].labels == {"country": "NO", "paging": "off"}
    assert cfg.grafana.provision_on_start is True
    rb = cfg.models[0].policy.rollback
    assert (rb.enabled, rb.dry_run) == (False, True)
    f = write(tmp_path, """
        schedule:
          interval: 1:30
        models:
          - name: m
        """)
    with pytest.raises(ConfigError) as e:  # not 90 seconds by accident of base 60
        load_config(f)
    assert "'1:30'" in dict(e.value.errors)["schedule.interval"]


def test_a_gpu_selector_written_with_braces_makes_valid_promql(tmp_path):
    """`gpu.selector: '{pod=~"recsys-.*"}'`, as PromQL writes matchers, passed check-config
    and made `DCGM_FI_DEV_GPU_UTIL{{pod=~...}}`: Prometheus refused every GPU query and the
    model was blind to saturation for good. The braces are taken as the selector's own."""
    from monitor.cycle.gather import gpu_queries

    for written in ('{pod=~"recsys-.*"}', ' { pod=~"recsys-.*" } ', 'pod=~"recsys-.*"'):
        cfg = parse_config({"models": [{"name": "m", "gpu": {"selector": written}}]})
        assert gpu_queries(cfg.models[0].gpu.selector)["gpu_util_pct"] == 'DCGM_FI_DEV_GPU_UTIL{pod=~"recsys-.*"}'
    msg = errors_of({"models": [{"name": "m", "gpu": {"selector": 'pod="a"} or up{'}}]})["models[0](m).gpu.selector"]
    assert "label matchers" in msg and "got" in msg, msg


def test_a_zero_repeat_interval_is_refused_not_a_reminder_every_cycle():
    """`repeat_interval: 0` (read as "never repeat", as 0 turns other things off) re-sent
    every open incident, and every group's page, at every cycle: a page a minute.
    Alertmanager refuses a zero repeat_interval too."""
    errs = errors_of({"policy": {"repeat_interval": 0}, "grouping": {"repeat_interval": "0s"},
                      "models": [{"name": "m", "policy": {"repeat_interval": "0m"}}]})
    for where in ("policy.repeat_interval", "grouping.repeat_interval",
                  "models[0](m).policy.repeat_interval"):
        assert where in errs and "greater than 0" in errs[where], errs


def test_a_value_that_fits_no_member_of_a_union_is_one_error_at_its_own_path():
    """`sweep: maybe` was two errors, one at `schedule.sweep.bool` (no such key) and one at
    `schedule.sweep`; `sweep_processes: 100` named `sweep_processes.constrained-int`."""
    errs = errors_of({"schedule": {"sweep": "maybe", "sweep_processes": 100}, "models": [{"name": "m"}]})
    assert set(errs) == {"schedule.sweep", "schedule.sweep_processes"}, errs
    assert "boolean" in errs["schedule.sweep"] and "'auto'" in errs["schedule.sweep"], errs
    assert errs["schedule.sweep"].count("'maybe'") == 1, errs
    assert "less than or equal to 64" in errs["schedule.sweep_processes"] and "(got 100)" in errs[
        "schedule.sweep_processes"], errs


def test_check_config_reports_every_cross_section_problem_at_once(tmp_path, capsys):
    """Checks across sections stopped at the first: a file with an unknown maintenance
    window, a receiver naming a model that does not exist and a retention shorter than the
    window a cycle reads was refused three times in a row, one line each time."""
    f = write(tmp_path, """
        schedule:
          lookback: 1h
        retention:
          samples: 30m
        models:
          - name: m
            mute_time_intervals: [nope]
        receivers:
          - {name: pd, kind: pagerduty, routing_key_env: PD_KEY, models: [ghost]}
        """)
    assert main(["check-config", str(f)]) == 1
    err = capsys.readouterr().err
    assert "3 error(s)" in err, err
    for said in ("unknown time interval 'nope'", "unknown model(s) ghost", "retention.samples: expected at least"):
        assert said in err, err
    # Each names its place in the file, as a field's own error does.
    lines = {ln.split(": ")[1]: ln.split(": ")[0].rsplit(":", 1)[1] for ln in err.splitlines()[1:]}
    assert lines["models[0](m).mute_time_intervals"].isdigit(), err
    assert lines["receivers[0](pd).models"].isdigit(), err
    assert lines["retention.samples"].isdigit(), err


def test_an_api_host_written_with_its_port_is_refused():
    """`api.host: 0.0.0.0:8080` (Prometheus's --web.listen-address form) passed check-config;
    the daemon then took its leases, started cycles, and stopped when the API could not bind."""
    msg = errors_of({"api": {"host": "0.0.0.0:8080"}, "models": [{"name": "m"}]})["api.host"]
    assert "api.port" in msg and "'0.0.0.0:8080'" in msg, msg
    for host in ("0.0.0.0", "::", "::1", "vigil.internal", "127.0.0.1"):
        assert parse_config({"api": {"host": host}, "models": [{"name": "m"}]}).api.host == host


def test_a_file_that_is_not_utf8_is_a_config_error_with_its_line(tmp_path, capsys):
    """A file saved as Latin-1 (`#équipe`) crashed check-config and `vigil run` with a
    UnicodeDecodeError traceback instead of the promised error line."""
    f = tmp_path / "vigil.yaml"
    f.write_bytes(b'models:\n  - name: m\n    owner_channel: "#\xe9quipe"\n')
    assert main(["check-config", str(f)]) == 1
    err = capsys.readouterr().err
    assert f"{f}:3:" in err and "UTF-8" in err and "Traceback" not in err, err
    with pytest.raises(SystemExit) as e:
        main(["run", "--config", str(f), "--no-api"])
    assert e.value.code == 2 and capsys.readouterr().err == err


def test_a_tokens_file_that_is_not_utf8_is_a_config_error(tmp_path, capsys):
    """`api.tokens_file` saved as Latin-1 crashed check-config with a traceback (and a
    SIGHUP reload with 'reload failed' and a stack)."""
    (tmp_path / "tokens.txt").write_bytes(b"ren\xe9 viewer " + b"a" * 64 + b"\n")
    f = write(tmp_path, """
        api:
          tokens_file: tokens.txt
        models:
          - name: m
        """)
    assert main(["check-config", str(f)]) == 1
    err = capsys.readouterr().err
    assert "api.tokens_file" in err and "tokens.txt" in err and "Traceback" not in err, err


def test_check_config_warns_about_secrets_it_cannot_read(tmp_path, capsys, monkeypatch):
    """check-config said OK while a receiver's routing key variable was unset (every page
    would wait in the outbox) and a serving webhook's secret file was missing (every
    rollback would fail): the daemon warns at start, the check said nothing."""
    monkeypatch.delenv("PD_ROUTING_KEY_UNSET", raising=False)
    f = write(tmp_path, """
        receivers:
          - {name: pd, kind: pagerduty, routing_key_env: PD_ROUTING_KEY_UNSET}
        models:
          - name: m
            serving: {kind: webhook, url: "https://d/r", verify_url: "https://d/s", secret_file: hook.secret}
        """)
    assert main(["check-config", str(f)]) == 0
    err = capsys.readouterr().err
    assert "warning: receivers[pd]" in err and "PD_ROUTING_KEY_UNSET" in err, err
    assert "warning: models[m].serving" in err and "hook.secret" in err, err



# --------------------------------------------------------------------------- PromQL
def test_check_config_warns_of_a_kpi_or_slo_query_whose_brackets_do_not_pair_up(tmp_path, capsys):
    """`sum(rate(x[5m]) / sum(rate(y[5m]))` passed `vigil check-config` without a word; every
    cycle then opened a "no data (ctr)" warning (Prometheus: "unclosed left parenthesis") and
    paged the owner over a typo in the file. It is a warning with its line (not an error: such
    a query still runs, as no data, and tests/unit/monitor/test_canary_cycle.py loads one)."""
    f = write(tmp_path, """
        models:
          - name: m
            kpis:
              - name: ctr
                query: sum(rate(clicks_total[5m]) / sum(rate(views_total[5m]))
              - name: fine
                query: 'sum(rate(x{path="/a(b]", q=`}`}[5m])) # a (comment'
            slos:
              - name: p99
                query: histogram_quantile(0.99, rate(d_bucket[5m])))
                threshold: 1
                volume_query: 'sum(rate(r{code=~"5.."}[5m])'
        """)
    assert main(["check-config", str(f)]) == 0
    err = capsys.readouterr().err
    assert f"{f}:5: warning: models[0](m).kpis[0](ctr).query: PromQL brackets do not pair up: unclosed '('" in err
    assert f"{f}:10: warning: models[0](m).slos[0](p99).query: PromQL brackets do not pair up: ')'" in err
    assert f"{f}:12: warning: models[0](m).slos[0](p99).volume_query:" in err
    assert "kpis[1](fine)" not in err


# --------------------------------------------------------------------------- matchers
def test_an_inhibit_rule_regex_in_python_only_syntax_is_refused_naming_the_matcher_and_re2():
    """Config matchers are RE2's, as Alertmanager's: a lookahead was taken, and ran on a
    backtracking engine every cycle."""
    errs = errors_of({"models": [{"name": "m"}], "inhibit_rules": [
        {"source_matchers": ['severity="critical"'], "target_matchers": ['model=~"(?!canary-).*"'], "equal": []}]})
    [(field, msg)] = errs.items()
    assert field == "inhibit_rules[0].target_matchers[0]", errs
    assert "RE2 syntax, as Alertmanager" in msg and "invalid perl operator: (?!" in msg, msg
    assert parse_config({"models": [{"name": "m"}], "inhibit_rules": [
        {"source_matchers": ['cause=~"(.*)*x"'], "target_matchers": ['model=~"canary-.*"']}]})


# --------------------------------------------------------------------------- what `run` reads
def _unreadable_token_file_and_audit_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("VIGIL_AUDIT_KEY_FOR_TEST", raising=False)
    return write(tmp_path, f"""
        api:
          tokens:
            - {{name: ci, role: viewer, token_file: {tmp_path}/no-such-token}}
        audit:
          key_env: VIGIL_AUDIT_KEY_FOR_TEST
        models:
          - name: m
        """)


def _names_both_with_their_lines(f: Path, err: str) -> None:
    assert f"{f}:3: api.tokens[0](ci): token_file: cannot read" in err
    assert f"{f}:5: audit.key_env: the environment variable VIGIL_AUDIT_KEY_FOR_TEST is not set" in err


def test_check_config_names_an_unreadable_token_file_and_audit_key_in_one_run_with_their_lines(tmp_path, capsys,
                                                                                             monkeypatch):
    """vigil.example.yaml took three runs of check-config to get through (the variables, then
    the token file, then the audit key), and the audit key's error had no line."""
    f = _unreadable_token_file_and_audit_key(tmp_path, monkeypatch)
    assert main(["check-config", str(f)]) == 1
    err = capsys.readouterr().err
    assert f"{f}: 2 error(s)" in err
    _names_both_with_their_lines(f, err)


@pytest.mark.parametrize("command", [["run", "--no-api"], ["serve"]])
def test_run_and_serve_refuse_an_unreadable_token_file_and_audit_key_with_check_configs_lines(command, tmp_path,
                                                                                              capsys, monkeypatch):
    """README: `vigil run` and `vigil serve` refuse a bad file with the same lines as
    check-config; the audit key's came alone, later, without its file and line."""
    f = _unreadable_token_file_and_audit_key(tmp_path, monkeypatch)
    with pytest.raises(SystemExit) as e:
        main([*command, "--config", str(f)])
    assert e.value.code == 2
    _names_both_with_their_lines(f, capsys.readouterr().err)
