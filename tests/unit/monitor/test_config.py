"""vigil.yaml validation: every error with its field path, secrets only from the environment."""
from __future__ import annotations

from pathlib import Path

import pytest

from monitor.cli import main
from monitor.config import ConfigError, load_config, parse_config

ROOT = Path(__file__).resolve().parents[3]


def test_example_config_is_valid(monkeypatch):
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
    monitor_ingest = "ingest-token-for-the-example"
    monkeypatch.setenv("VIGIL_INGEST_TOKEN", monitor_ingest)
    cfg = load_config(ROOT / "vigil.example.yaml")
    assert cfg.models[0].name == "recommender"
    assert cfg.slack.bot_token == "xoxb-test"
    assert cfg.policy.cold_start == 7 * 86400 and cfg.schedule.interval == 60


def test_demo_config_is_valid(tmp_path):
    from monitor.replay.demo import CONFIG

    (tmp_path / "vigil.yaml").write_text(CONFIG)
    assert load_config(tmp_path / "vigil.yaml").models[0].prediction_column == "score"


def test_defaults_match_the_policy_from_the_field():
    cfg = parse_config({"models": [{"name": "m"}]})
    p = cfg.policy
    assert (p.drift_warning, p.drift_critical, p.kpi_drop_critical_pct) == (0.1, 0.2, 5.0)
    assert p.rollback.cooldown == 6 * 3600 and p.rollback.max_per_day == 2
    assert cfg.models[0].alias == "champion"


def errors_of(data) -> dict[str, str]:
    with pytest.raises(ConfigError) as e:
        parse_config(data)
    return dict(e.value.errors)


def test_every_error_is_reported_with_its_path():
    errs = errors_of({
        "schedule": {"interval": "soon"},
        "policy": {"drift_warning": -1},
        "models": [{"name": "ok"}, {"name": "bad name!", "kpis": [{"name": "ctr"}], "slos": [{"name": "p99",
                    "query": "x", "threshold": "high"}]}],
        "slakc": {},
    })
    assert "duration" in errs["schedule.interval"] and "'soon'" in errs["schedule.interval"]
    assert "greater than 0" in errs["policy.drift_warning"]
    assert "letters, digits" in errs["models[1](bad name!).name"]
    assert errs["models[1](bad name!).kpis[0](ctr).query"] == "required field is missing"
    assert "number" in errs["models[1](bad name!).slos[0](p99).threshold"]
    assert "unknown key; did you mean 'slack'?" in errs["slakc"]


def test_secrets_in_the_file_are_refused():
    errs = errors_of({"slack": {"bot_token": "xoxb-123-real-token"}, "models": [{"name": "m"}]})
    assert "${SLACK_BOT_TOKEN}" in errs["slack.bot_token"]
    # and the secret itself is not echoed back
    assert "xoxb-123" not in errs["slack.bot_token"]


def test_unset_optional_secret_means_none(monkeypatch):
    monkeypatch.delenv("NOPE_TOKEN", raising=False)
    cfg = parse_config({"slack": {"bot_token": "${NOPE_TOKEN:-}"}, "models": [{"name": "m"}]})
    assert cfg.slack.bot_token is None


def test_critical_below_warning_is_refused():
    errs = errors_of({"policy": {"drift_warning": 0.3, "drift_critical": 0.2}, "models": [{"name": "m"}]})
    assert "drift_critical (0.2) must be >= drift_warning (0.3)" in errs["policy"]


def test_duplicate_models_and_missing_models():
    assert "repeated: m" in errors_of({"models": [{"name": "m"}, {"name": "m"}]})["models"]
    assert "models" in errors_of({})


def test_check_config_cli(tmp_path, capsys):
    good = tmp_path / "good.yaml"
    good.write_text("models:\n  - name: m\n")
    assert main(["check-config", str(good)]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("schedule:\n  lookback: forever\nmodels:\n  - name: m\n    gpu: {util_pct: 150}\n")
    assert main(["check-config", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "2 error(s)" in err and "schedule.lookback" in err and "models[0](m).gpu.util_pct" in err
    broken = tmp_path / "broken.yaml"
    broken.write_text("models: [\n")
    assert main(["check-config", str(broken)]) == 1
    assert "invalid YAML" in capsys.readouterr().err
    assert main(["check-config", str(tmp_path / "missing.yaml")]) == 1


def test_anomaly_resolution_is_a_duration_that_fits_the_window_a_cycle_reads():
    assert parse_config({"models": [{"name": "m"}]}).policy.anomaly_resolution == 300.0  # 5-minute means
    cfg = parse_config({"policy": {"anomaly_resolution": 0}, "models": [{"name": "m"}]})
    assert cfg.policy.anomaly_resolution == 0.0  # every point, as queried
    model = {"name": "m", "policy": {"anomaly_resolution": "30m"}}
    errs = errors_of({"schedule": {"lookback": "30m", "interval": "1m"}, "models": [model]})
    assert errs["models[0](m).policy.anomaly_resolution"] == (
        "expected at most schedule.lookback - schedule.interval (1740 s) (got 1800 s; the default is 300 s, "
        "0 turns binning off)")
    short = {"lookback": "5m", "interval": "1m"}
    assert "policy.anomaly_resolution" in errors_of({"schedule": short, "policy": {"anomaly_resolution": "5m"},
                                                     "models": [{"name": "m"}]})
    parse_config({"schedule": short, "models": [{"name": "m"}]})  # the default shrinks to fit (detect.py)
    assert "duration" in errors_of({"policy": {"anomaly_resolution": "often"}, "models": [{"name": "m"}]})[
        "policy.anomaly_resolution"]


@pytest.mark.parametrize("source", ["prometheus", "loki", "tempo"])
def test_a_source_url_with_a_query_string_is_refused_by_check_config(source):
    """`url: http://prometheus:9090/?api_key=...` passed check-config, then every query went to
    `/?api_key=.../api/v1/query` (the path is appended after the query string) and failed each
    cycle with "JSONDecodeError: Expecting value": the source down for a reason nobody could
    read. The check now says why, without echoing the key."""
    errs = errors_of({"sources": {source: {"url": "http://127.0.0.1:9090/?api_key=s3cr3t-key"}},
                      "models": [{"name": "m"}]})
    msg = errs[f"sources.{source}.url"]
    assert "query" in msg and "bearer_token" in msg, msg
    assert "s3cr3t-key" not in msg, msg
    for bare in ("http://127.0.0.1:9090/?", "http://127.0.0.1:9090#"):  # empty, and as fatal
        assert f"sources.{source}.url" in errors_of({"sources": {source: {"url": bare}}, "models": [{"name": "m"}]})
    assert parse_config({"sources": {source: {"url": "http://127.0.0.1:9090/prefix/"}},
                         "models": [{"name": "m"}]}) is not None  # a path prefix (behind a proxy) is fine


def test_a_global_anomaly_resolution_too_long_is_reported_once_where_it_is_written():
    """Each model with a `policy:` of its own inherits the global one: the cross-section check
    reported the global anomaly_resolution again at every such model, at the line of a
    policy block that does not hold the key, sending the SRE to edit the wrong place."""
    errs = errors_of({"schedule": {"lookback": "5m", "interval": "1m"}, "policy": {"anomaly_resolution": "5m"},
                      "models": [{"name": "m", "policy": {"drift_warning": 0.1}},
                                 {"name": "n", "policy": {"drift_warning": 0.1}}]})
    assert [k for k in errs if k.endswith("anomaly_resolution")] == ["policy.anomaly_resolution"], errs
    # A model's own value, other than the global one, is still reported at the model.
    errs = errors_of({"schedule": {"lookback": "5m", "interval": "1m"},
                      "models": [{"name": "m", "policy": {"anomaly_resolution": "6m"}}]})
    assert "models[0](m).policy.anomaly_resolution" in errs, errs


def test_a_feature_listed_twice_under_two_types_is_refused():
    """`age` listed as numeric and again as categorical: the drift verdict took the first
    type, the incident's Evidently page the categorical one and POST /v1/samples demanded
    numbers, so the three disagreed in silence. It is refused at check-config, with why."""
    errs = errors_of({"models": [{"name": "m", "features": ["age", {"name": "age", "type": "categorical"}]}]})
    (msg,) = [v for k, v in errs.items() if k.startswith("models[0](m).features")]
    assert "'age'" in msg and "numeric" in msg and "categorical" in msg
    cfg = parse_config({"models": [{"name": "m", "features": ["age", "age"]}]})  # the same twice: harmless
    assert [f.name for f in cfg.models[0].features] == ["age", "age"]
