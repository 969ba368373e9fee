"""`messages:` in vigil.yaml (time zone, runbooks, MLflow UI, Grafana range) and the
warnings `vigil check-config` prints about links nobody else can open."""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from dashboards.provisioning import write_provisioning_files
from monitor.cli import main
from monitor.config import ConfigError, parse_config
from monitor.cycle.messages import Links
from monitor.grafana.specs import dashboard_specs
from monitor.store.repository import IncidentRow


def errors_of(data: dict) -> dict[str, str]:
    with pytest.raises(ConfigError) as e:
        parse_config(data)
    return dict(e.value.errors)


def test_defaults_keep_old_configs_valid_and_utc():
    cfg = parse_config({"models": [{"name": "m"}]})
    assert cfg.messages.time_zone == "UTC" and cfg.messages.runbooks == {} and cfg.models[0].runbooks == {}


def test_an_unknown_time_zone_is_named_with_what_was_expected():
    msg = errors_of({"messages": {"time_zone": "Mars/Olympus"}, "models": [{"name": "m"}]})["messages.time_zone"]
    assert "Mars/Olympus" in msg and "IANA" in msg


def test_runbook_keys_are_finding_kinds_or_default():
    msg = errors_of({"messages": {"runbooks": {"latency": "https://wiki/x"}}, "models": [{"name": "m"}]})[
        "messages.runbooks"]
    assert "latency" in msg and "slo_breach" in msg and "default" in msg
    assert "models[0](m).runbooks" in errors_of({"models": [{"name": "m", "runbooks": {"drfit": "https://w/x"}}]})


def test_links_follow_the_config():
    cfg = parse_config({
        "sources": {"mlflow": {"tracking_uri": "http://mlflow:5000"}},
        "grafana": {"url": "http://grafana:3000", "public_url": "https://grafana.example.com"},
        "api": {"public_url": "https://vigil.example.com"},
        "messages": {"time_zone": "Europe/Paris", "runbooks": {"default": "https://wiki/vigil"}},
        "models": [{"name": "m", "registry_name": "m-reg", "runbooks": {"kpi_drop": "https://wiki/m-kpi"},
                    "slos": [{"name": "p99", "query": "x", "threshold": 0.5, "unit": "s"}]}]})
    links = Links.from_config(cfg)
    assert links.settings.grafana_base == "https://grafana.example.com"
    assert links.settings.mlflow_ui == "http://mlflow:5000"  # the tracking server is the registry UI
    assert links.settings.model_runbooks == {"m": {"kpi_drop": "https://wiki/m-kpi"}}
    assert links.display["m"]["time_zone"] == "Europe/Paris" and links.display["m"]["units"] == {"p99": "s"}
    sqlite = parse_config({"sources": {"mlflow": {"tracking_uri": "sqlite:///m.db"}}, "models": [{"name": "m"}]})
    assert Links.from_config(sqlite).settings.mlflow_ui is None  # no UI to link to


def test_check_config_warns_when_api_public_url_is_unset(tmp_path, capsys):
    bare = tmp_path / "bare.yaml"
    bare.write_text("models:\n  - name: m\n")
    assert main(["check-config", str(bare)]) == 0  # a warning, not an error
    err = capsys.readouterr().err
    assert "warning: api.public_url is not set" in err and "http://127.0.0.1:8080" in err
    assert "no Grafana link" in err
    full = tmp_path / "full.yaml"
    full.write_text("api: {public_url: 'https://vigil.example.com'}\ngrafana: {url: 'http://grafana:3000'}\n"
                    "models:\n  - name: m\n")
    assert main(["check-config", str(full)]) == 0
    assert "warning" not in capsys.readouterr().err


def test_the_grafana_link_opens_the_dashboard_in_the_organization_it_was_provisioned_into(tmp_path):
    """Grafana finds a dashboard uid only in the viewer's current organization: a link without
    `orgId` gave "Dashboard not found" to a viewer whose current org was another one. The link names
    the org the dashboards are provisioned into when `grafana.org_id` says it; unset, it names none,
    as before the setting (an upgrade must not switch viewers of dashboards in org 2 to org 1),
    and the provisioning files say org 1, Grafana's default."""
    def link_and_file_org(grafana: dict) -> tuple[list[str], int]:
        cfg = parse_config({"grafana": grafana, "models": [{"name": "m"}]})
        row = IncidentRow(id=7, model="m", onset=1795165200.0, findings=[], causes=[])
        url = Links.from_config(cfg).for_incident(row, now=1795165800.0, serving_version=None)["grafana"]
        assert url is not None
        out = tmp_path / str(grafana.get("org_id", "default"))
        write_provisioning_files(dashboard_specs(cfg), out)
        provider = yaml.safe_load((out / "provisioning" / "dashboards" / "vigil.yaml").read_text())
        sources = yaml.safe_load((out / "provisioning" / "datasources" / "vigil.yaml").read_text())["datasources"]
        # The dashboards' data sources in the same org: Grafana puts a file's data source in org 1 by default.
        assert {d["orgId"] for d in sources} == {provider["providers"][0]["orgId"]}
        return parse_qs(urlsplit(url).query).get("orgId", []), provider["providers"][0]["orgId"]

    assert link_and_file_org({"url": "http://grafana:3000"}) == ([], 1)
    assert link_and_file_org({"url": "http://grafana:3000", "org_id": 1}) == (["1"], 1)
    assert link_and_file_org({"url": "http://grafana:3000", "org_id": 2}) == (["2"], 2)
    assert "greater than or equal to 1" in errors_of({"grafana": {"org_id": 0}, "models": [{"name": "m"}]})[
        "grafana.org_id"]


def test_check_config_warns_that_slack_buttons_cannot_work_without_a_signing_secret(tmp_path, capsys, monkeypatch):
    """The quick start's config posts to Slack once SLACK_BOT_TOKEN is exported, with Acknowledge,
    Silence and Roll back buttons on every message; without slack.signing_secret each press
    is refused (POST /v1/slack/actions answers 503), and nothing said so before someone pressed."""
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1-2-for-the-test")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "0123456789abcdef")
    base = "api: {public_url: 'https://vigil.example.com'}\ngrafana: {url: 'http://grafana:3000'}\n"
    bare = tmp_path / "bare.yaml"
    bare.write_text(base + "slack: {bot_token: '${SLACK_BOT_TOKEN}'}\nmodels:\n  - name: m\n")
    assert main(["check-config", "--offline", str(bare)]) == 0  # a warning, not an error (Slack not asked)
    err = capsys.readouterr().err
    assert "warning: slack.signing_secret is not set" in err, err
    assert "Roll back" in err and "https://vigil.example.com/v1/slack/actions" in err, err
    signed = tmp_path / "signed.yaml"
    signed.write_text(base + "slack: {bot_token: '${SLACK_BOT_TOKEN}', signing_secret: '${SLACK_SIGNING_SECRET}'}\n"
                      "models:\n  - name: m\n")
    assert main(["check-config", "--offline", str(signed)]) == 0
    assert "warning" not in capsys.readouterr().err
    sink = tmp_path / "sink.yaml"  # no Slack at all: no buttons to warn about
    sink.write_text(base + "models:\n  - name: m\n")
    assert main(["check-config", str(sink)]) == 0
    assert "warning" not in capsys.readouterr().err


def test_the_daemon_says_at_start_that_its_slack_buttons_cannot_work_without_a_signing_secret(caplog, monkeypatch):
    import logging

    from monitor.startup import announce

    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1-2-for-the-test")
    cfg = parse_config({"slack": {"bot_token": "${SLACK_BOT_TOKEN}"}, "models": [{"name": "m"}]})
    with caplog.at_level(logging.WARNING, logger="vigil"):
        announce(cfg, ["slack"], serve_api=True, cycles=True)
    assert "slack.signing_secret is not set" in caplog.text
    assert "http://127.0.0.1:8080/v1/slack/actions" in caplog.text
    assert "xoxb-1-2-for-the-test" not in caplog.text
