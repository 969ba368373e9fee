"""`${VAR}` in vigil.yaml: a reference that does not resolve is an error, unless it says it is optional."""
from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from monitor.cli import main
from monitor.config import ConfigError, PrometheusConfig, Secret, load_config, parse_config

MODELS = [{"name": "m"}]


def errors_of(data: dict) -> dict[str, str]:
    with pytest.raises(ConfigError) as e:
        parse_config(data)
    return dict(e.value.errors)


def test_a_misspelled_variable_is_an_error_naming_the_field_the_variable_and_the_likely_one(monkeypatch):
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-real-secret")
    monkeypatch.delenv("SLACK_BOT_TOKNE", raising=False)
    errs = errors_of({"slack": {"bot_token": "${SLACK_BOT_TOKNE}"}, "models": MODELS})
    msg = errs["slack.bot_token"]
    assert "SLACK_BOT_TOKNE is not set" in msg and "did you mean ${SLACK_BOT_TOKEN}?" in msg
    assert "${SLACK_BOT_TOKNE:-}" in msg  # how to say it is optional
    assert "xoxb" not in msg
    assert list(errs) == ["slack.bot_token"]  # reported once, not again by the secret's validator


def test_check_config_refuses_the_misspelled_token_with_its_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    monkeypatch.delenv("SLACK_BOT_TOKNE", raising=False)
    f = tmp_path / "vigil.yaml"
    f.write_text("slack:\n  sink_path: out.jsonl\n  bot_token: ${SLACK_BOT_TOKNE}\nmodels:\n  - name: m\n")
    assert main(["check-config", str(f)]) == 1
    assert f"{f}:3: slack.bot_token: environment variable SLACK_BOT_TOKNE is not set" in capsys.readouterr().err


def test_an_empty_variable_is_no_value(monkeypatch):
    monkeypatch.setenv("VIGIL_T_EMPTY", "")
    assert "VIGIL_T_EMPTY is empty" in errors_of({"api": {"token": "${VIGIL_T_EMPTY}"}, "models": MODELS})["api.token"]
    cfg = parse_config({"api": {"token": "${VIGIL_T_EMPTY:-}"}, "models": MODELS})
    assert cfg.api.token is None


def test_optional_references_leave_the_key_out(monkeypatch):
    monkeypatch.delenv("VIGIL_T_UNSET", raising=False)
    cfg = parse_config({"grafana": {"url": "${VIGIL_T_UNSET:-}", "token": "${VIGIL_T_UNSET:-}"},
                        "sources": {"prometheus": {"url": "${VIGIL_T_UNSET:-}"}}, "models": MODELS})
    assert cfg.grafana.url is None and cfg.grafana.token is None
    assert cfg.sources.prometheus.url == "http://127.0.0.1:9090"  # the field's default


def test_an_optional_reference_on_a_required_field_names_the_variable(monkeypatch):
    monkeypatch.delenv("VIGIL_T_MODEL", raising=False)
    errs = errors_of({"models": [{"name": "${VIGIL_T_MODEL:-}"}]})
    assert errs["models[0].name"] == ("required field is missing: ${VIGIL_T_MODEL:-} left it out, "
                                      "and VIGIL_T_MODEL is not set")


def test_defaults_and_references_inside_longer_values(monkeypatch):
    monkeypatch.delenv("VIGIL_T_PORT", raising=False)
    monkeypatch.setenv("VIGIL_T_HOST", "prom.internal")
    cfg = parse_config({"sources": {"prometheus": {"url": "http://${VIGIL_T_HOST}:9090"},
                                    "mlflow": {"tracking_uri": "${VIGIL_T_PORT:-http://mlflow:5000}"}},
                        "api": {"port": "${VIGIL_T_PORT:-8081}"},
                        "models": [{"name": "m", "kpis": [{"name": "k", "query": "up{a=~\"x$\"} + $${literal}"}]}]})
    assert cfg.sources.prometheus.url == "http://prom.internal:9090"
    assert cfg.sources.mlflow.tracking_uri == "http://mlflow:5000"
    assert cfg.api.port == 8081
    assert cfg.models[0].kpis[0].query == 'up{a=~"x$"} + ${literal}'
    monkeypatch.setenv("VIGIL_T_PORT", "9000")
    assert parse_config({"api": {"port": "${VIGIL_T_PORT:-8081}"}, "models": MODELS}).api.port == 9000


def test_a_secret_cannot_have_a_default_written_in_the_file(monkeypatch):
    monkeypatch.delenv("VIGIL_T_UNSET", raising=False)
    msg = errors_of({"api": {"token": "${VIGIL_T_UNSET:-hunter2}"}, "models": MODELS})["api.token"]
    assert "cannot have a default" in msg and "hunter2" not in msg
    msg = errors_of({"api": {"token": "abc${VIGIL_T_UNSET:-}"}, "models": MODELS})["api.token"]
    assert "never written in the file" in msg  # part literal is literal


def test_malformed_references_are_errors():
    errs = errors_of({"models": [{"name": "m", "owner_channel": "${1BAD}", "oncall_channel": "#x-${OPEN"}],
                      "api": {"token": "${xoxb-123}"}})
    assert "malformed reference: expected ${NAME}" in errs["models[0](m).owner_channel"]
    assert "xoxb" not in errs["api.token"]
    assert "unclosed" in errs["models[0](m).oncall_channel"]


def test_all_unresolved_references_are_reported_with_the_other_errors(monkeypatch):
    for name in ("VIGIL_T_A", "VIGIL_T_B"):
        monkeypatch.delenv(name, raising=False)
    errs = errors_of({"slack": {"bot_token": "${VIGIL_T_A}"}, "grafana": {"token": "${VIGIL_T_B}"},
                      "schedule": {"interval": "soon"}, "models": MODELS})
    assert set(errs) == {"slack.bot_token", "grafana.token", "schedule.interval"}


def test_models_built_in_code_resolve_references_by_the_same_rules(monkeypatch):
    monkeypatch.delenv("VIGIL_T_UNSET", raising=False)
    with pytest.raises(ValidationError, match="VIGIL_T_UNSET is not set"):
        PrometheusConfig(bearer_token="${VIGIL_T_UNSET}")
    assert PrometheusConfig(bearer_token="${VIGIL_T_UNSET:-}").bearer_token is None
    monkeypatch.setenv("VIGIL_T_UNSET", "tok")
    assert PrometheusConfig(bearer_token="${VIGIL_T_UNSET}").bearer_token == "tok"


def test_the_example_needs_only_the_slack_token(monkeypatch):
    from tests.unit.monitor.test_config import ROOT

    for name in ("SLACK_SIGNING_SECRET", "GRAFANA_TOKEN", "VIGIL_API_TOKEN", "SLACK_BOT_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigError, match="SLACK_BOT_TOKEN is not set"):
        load_config(ROOT / "vigil.example.yaml")


def test_a_secret_under_any_name_is_never_echoed():
    from monitor.config_loading import ConfigSource, validate_config

    class Root(BaseModel):
        hmac_key: Secret = None

    with pytest.raises(ConfigError) as e:
        validate_config(Root, {"hmac_key": "k3y-literal"}, ConfigSource())
    assert "never written in the file" in str(e.value) and "k3y" not in str(e.value)


def test_a_secret_from_a_kubernetes_secret_loses_its_trailing_newline(monkeypatch):
    """`kubectl create secret --from-file` keeps the file's newline, and envFrom hands it on:
    `${VIGIL_API_TOKEN}` became "tok\\n", so every request bearing the token got 401; a
    Slack signing secret with it failed every button. Secret files were stripped, the
    environment's secrets were not."""
    from monitor.identities import load_token_table

    monkeypatch.setenv("VIGIL_API_TOKEN", "tok-5b1e8d\n")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", " 8f14e45fceea167a\r\n")
    cfg = parse_config({"api": {"token": "${VIGIL_API_TOKEN}"},
                        "slack": {"signing_secret": "${SLACK_SIGNING_SECRET}"}, "models": MODELS})
    assert cfg.api.token == "tok-5b1e8d" and cfg.slack.signing_secret == "8f14e45fceea167a"
    assert load_token_table(cfg).resolve("tok-5b1e8d") is not None
    monkeypatch.setenv("VIGIL_API_TOKEN", "\n")  # only a newline: no token, said as such
    assert "VIGIL_API_TOKEN" in errors_of({"api": {"token": "${VIGIL_API_TOKEN}"}, "models": MODELS})["api.token"]


def test_a_url_from_the_environment_loses_its_trailing_newline(monkeypatch):
    """`url: ${PROMETHEUS_URL}` from a ConfigMap or Secret keeps the file's newline: the
    check passed (it stripped before checking) and every query then failed with httpx's
    InvalidURL, so the model read as blind at every cycle."""
    monkeypatch.setenv("PROMETHEUS_URL", "http://prometheus:9090\n")
    monkeypatch.setenv("VIGIL_STORE_URL", " sqlite:////var/lib/vigil/vigil.db\n")
    monkeypatch.setenv("MLFLOW_URI", "http://mlflow:5000\r\n")
    cfg = parse_config({"sources": {"prometheus": {"url": "${PROMETHEUS_URL}"},
                                    "mlflow": {"tracking_uri": "${MLFLOW_URI}"}},
                        "store": {"url": "${VIGIL_STORE_URL}"}, "models": MODELS})
    assert cfg.sources.prometheus.url == "http://prometheus:9090"
    assert cfg.sources.mlflow.tracking_uri == "http://mlflow:5000"
    assert cfg.store.url == "sqlite:////var/lib/vigil/vigil.db"


def test_a_rollback_webhook_url_from_the_environment_loses_its_trailing_newline(monkeypatch):
    """The same for `models[].serving` (kind webhook): its URL with a newline failed at the
    rollback, after the MLflow alias had moved."""
    monkeypatch.setenv("DEPLOY_HOOK", "https://deployer/rollback\n")
    serving = {"kind": "webhook", "url": "${DEPLOY_HOOK}", "verify_url": " https://deployer/serving ",
               "secret_env": "HOOK_SECRET"}
    cfg = parse_config({"models": [{"name": "m", "serving": serving}]})
    assert (cfg.models[0].serving.url, cfg.models[0].serving.verify_url) == ("https://deployer/rollback",
                                                                            "https://deployer/serving")
