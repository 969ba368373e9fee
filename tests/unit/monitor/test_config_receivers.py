"""`receivers:` in vigil.yaml: each kind's keys, secrets named never written, errors that
point at the field, and the notifiers built from it."""
from __future__ import annotations

from typing import Any

import pytest

from alerts.receivers.alertmanager import AlertmanagerReceiver
from alerts.receivers.opsgenie import OpsgenieReceiver
from alerts.receivers.pagerduty import PagerDutyReceiver
from alerts.receivers.webhook import WebhookReceiver
from monitor.config import ConfigError, parse_config
from monitor.notifiers import default_notifiers

PD = {"name": "pd", "kind": "pagerduty", "routing_key_env": "PD_KEY", "severities": ["critical"]}


def config(*receivers: dict[str, Any]) -> dict[str, Any]:
    return {"models": [{"name": "recommender"}, {"name": "ranker"}], "receivers": list(receivers)}


def errors_of(data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ConfigError) as e:
        parse_config(data)
    return dict(e.value.errors)


def test_no_receivers_key_keeps_older_configs_valid():
    assert parse_config({"models": [{"name": "m"}]}).receivers == []


def test_every_kind_builds_its_notifier_with_what_it_takes(tmp_path):
    cfg = parse_config(config(
        PD,
        {"name": "og", "kind": "opsgenie", "api_key_file": "secrets/og", "region": "eu", "models": ["ranker"],
         "responders": [{"type": "team", "name": "ml-oncall"}]},
        {"name": "hook", "kind": "webhook", "url": "https://hooks.example/vigil", "secret_env": "HOOK_SECRET"},
        {"name": "am", "kind": "alertmanager", "url": "http://alertmanager:9093", "resend_every": "30s",
         "labels": {"team": "ml"}},
    ), base_dir=str(tmp_path))
    built = default_notifiers(cfg)
    assert set(built) == {"sink", "pd", "og", "hook", "am"}, "receivers come on top of Slack or the sink"
    pd, og, hook, am = built["pd"], built["og"], built["hook"], built["am"]
    assert isinstance(pd, PagerDutyReceiver) and pd.endpoint == "https://events.pagerduty.com/v2/enqueue"
    assert pd.receiving.match.takes("recommender", "critical") and not pd.receiving.match.takes("ranker", "warning")
    assert isinstance(og, OpsgenieReceiver) and og.base == "https://api.eu.opsgenie.com/v2/alerts"
    assert og.api_key.file == tmp_path / "secrets/og", "a relative secret file is read beside the config"
    assert og.receiving.match.takes("ranker", "warning") and not og.receiving.match.takes("recommender", "critical")
    assert isinstance(hook, WebhookReceiver) and isinstance(am, AlertmanagerReceiver)
    assert (am.endpoint, am.resend_every_s, am.ttl_s) == ("http://alertmanager:9093/api/v2/alerts", 30.0, 120.0)


def test_opsgenie_region_picks_the_us_or_eu_api():
    us = parse_config(config({"name": "og", "kind": "opsgenie", "api_key_env": "OG"}))
    built = default_notifiers(us)["og"]
    assert isinstance(built, OpsgenieReceiver) and built.base == "https://api.opsgenie.com/v2/alerts"


def test_a_receiver_without_its_key_says_which_keys_to_set():
    errs = errors_of(config({"name": "pd", "kind": "pagerduty"}))
    assert "routing_key_env" in errs["receivers[0](pd)"] and "routing_key_file" in errs["receivers[0](pd)"]


def test_a_pasted_secret_is_refused_without_being_echoed():
    secret = "R0UT1NGK3Y-0123456789abcdef0123"
    errs = errors_of(config({**PD, "routing_key_env": secret}))
    text = " ".join(errs.values())
    assert "name of an environment variable" in text and secret not in text


def test_unknown_kind_model_duplicate_and_reserved_names_are_named():
    errs = errors_of(config({**PD, "kind": "pagerdooty"}))
    assert any("pagerduty" in v for v in errs.values()), errs
    errs = errors_of(config({**PD, "models": ["recomender"]}))
    assert any("unknown model(s) recomender" in v for v in errs.values()), errs
    errs = errors_of(config(PD, {**PD, "routing_key_env": "OTHER"}))
    assert any("repeated: pd" in v for v in errs.values()), errs
    errs = errors_of(config({**PD, "name": "slack"}))
    assert "built-in notifier" in errs["receivers[0](slack).name"]
    errs = errors_of(config({"name": "am", "kind": "alertmanager", "url": "http://am:9093",
                             "labels": {"severity": "high"}}))
    assert any("severity" in v and "set by Vigil" in v for v in errs.values()), errs


def test_retries_that_could_outlast_the_outbox_claim_are_refused():
    errs = errors_of(config({**PD, "max_attempts": 10, "timeout_s": 60}))
    assert any("at most 240 s" in v for v in errs.values()), errs


def test_start_up_warns_about_a_secret_it_cannot_read(tmp_path, monkeypatch, caplog):
    monkeypatch.delenv("PD_KEY", raising=False)
    (tmp_path / "og").write_text("og-secret-value\n")
    cfg = parse_config(config(PD, {"name": "og", "kind": "opsgenie", "api_key_file": "og"}), base_dir=str(tmp_path))
    with caplog.at_level("WARNING", logger="vigil"):
        default_notifiers(cfg)
    warned = [r for r in caplog.records if "cannot read its secret" in r.getMessage()]
    assert [r.receiver for r in warned] == ["pd"], "the readable file raises no warning"
    assert "PD_KEY is not set" in warned[0].error
    assert "og-secret-value" not in caplog.text


@pytest.mark.parametrize("name", ["team-name", "1team", "team.name", "équipe", ""])
def test_a_static_label_alertmanager_would_refuse_is_named_at_start_up(name: str):
    # A real Alertmanager answers every push carrying it with 400 "invalid label set:
    # invalid name", so each page would fail on its first delivery, not at start-up.
    errs = errors_of(config({"name": "am", "kind": "alertmanager", "url": "http://am:9093",
                             "labels": {name: "ml"}}))
    assert any("label name" in v and "[a-zA-Z_][a-zA-Z0-9_]*" in v for v in errs.values()), errs


def test_valid_static_label_names_are_kept():
    cfg = parse_config(config({"name": "am", "kind": "alertmanager", "url": "http://am:9093",
                               "labels": {"team": "ml", "_env": "prod", "Region2": "eu"}}))
    assert cfg.receivers[0].labels == {"team": "ml", "_env": "prod", "Region2": "eu"}


def test_the_full_endpoint_pasted_as_url_is_not_doubled():
    """PagerDuty names its endpoint https://events.pagerduty.com/v2/enqueue, Alertmanager's
    is .../api/v2/alerts: pasted as `url`, check-config said OK and every page went to
    .../v2/enqueue/v2/enqueue, a 404, retried in the outbox until someone looked."""
    from monitor.receivers import build_receiver

    cfg = parse_config(config(
        {**PD, "url": "https://events.pagerduty.com/v2/enqueue"},
        {"name": "og", "kind": "opsgenie", "api_key_env": "OG_KEY", "url": "https://api.eu.opsgenie.com/v2/alerts/"},
        {"name": "am", "kind": "alertmanager", "url": "http://alertmanager:9093/api/v2/alerts"}))
    endpoints = {r.name: build_receiver(cfg, r) for r in cfg.receivers}
    assert endpoints["pd"].endpoint == "https://events.pagerduty.com/v2/enqueue"
    assert endpoints["og"].base == "https://api.eu.opsgenie.com/v2/alerts"
    assert endpoints["am"].endpoint == "http://alertmanager:9093/api/v2/alerts"


def test_a_key_file_next_to_the_config_is_read_after_kubernetes_rotates_it(tmp_path):
    """A ConfigMap or Secret volume holds `vigil.yaml -> ..data/vigil.yaml` and `..data ->
    ..2026_12_06_00_00.1`; a rotation writes a new timestamped folder, swaps `..data` and
    deletes the old one. Relative paths resolved into the old folder (the config's
    symlinks followed), so a rotated `routing_key_file: pd.key` could no longer be read at
    all: every page waited in the outbox until a restart."""
    import os

    from monitor.config import load_config
    from monitor.receivers import build_receiver

    def publish(version: str, key: str) -> None:  # what kubelet's atomic writer does
        folder = tmp_path / f"..{version}"
        folder.mkdir()
        (folder / "vigil.yaml").write_text(
            "receivers:\n  - {name: pd, kind: pagerduty, routing_key_file: pd.key}\nmodels:\n  - name: m\n")
        (folder / "pd.key").write_text(key)
        os.symlink(folder.name, tmp_path / "..data_tmp")
        os.replace(tmp_path / "..data_tmp", tmp_path / "..data")

    publish("2026_12_06_00_00.1", "first-routing-key-0123456789abcd")
    for name in ("vigil.yaml", "pd.key"):
        os.symlink(f"..data/{name}", tmp_path / name)
    cfg = load_config(tmp_path / "vigil.yaml")
    receiver = build_receiver(cfg, cfg.receivers[0])
    assert receiver.routing_key.read() == "first-routing-key-0123456789abcd"
    publish("2026_12_06_01_00.2", "second-routing-key-0123456789abc")
    for f in (tmp_path / "..2026_12_06_00_00.1").iterdir():
        f.unlink()
    (tmp_path / "..2026_12_06_00_00.1").rmdir()
    assert receiver.routing_key.read() == "second-routing-key-0123456789abc"


def test_an_opsgenie_receiver_told_of_rollbacks_but_not_incidents_is_refused():
    """Its rollbacks are notes on the alerts it paged: with `events: [rollback]` alone it paged
    none, and every rollback was dropped without a word."""
    errs = errors_of(config({"name": "og", "kind": "opsgenie", "api_key_env": "OG", "events": ["rollback"]}))
    assert "events" in errs["receivers[0](og)"] and "'incident'" in errs["receivers[0](og)"], errs
    both = parse_config(config({"name": "og", "kind": "opsgenie", "api_key_env": "OG",
                                "events": ["incident", "rollback"]}))
    assert both.receivers[0].events == ["incident", "rollback"]
