"""Which notifiers and log/trace clients a configuration asks for, built once at start-up."""
from __future__ import annotations

import logging
from typing import Any

from alerts.outbox import Notifier
from monitor.config import VigilConfig
from monitor.receivers import build_receivers

log = logging.getLogger("vigil")


def log_trace_clients(config: VigilConfig) -> tuple[Any, Any]:
    loki = tempo = None
    if config.sources.loki is not None:
        from monitor.sources.loki import LokiSource

        loki = LokiSource(config.sources.loki)
    if config.sources.tempo is not None:
        from monitor.sources.tempo import TempoSource

        tempo = TempoSource(config.sources.tempo)
    return loki, tempo


def default_notifiers(config: VigilConfig) -> dict[str, Notifier]:
    """Slack when a bot token is set, else the JSON-lines sink; Grafana annotations when
    configured; and every configured receiver (PagerDuty, Opsgenie, webhook, Alertmanager)."""
    out: dict[str, Notifier] = {}
    if config.slack.bot_token:
        from alerts.slack import SlackNotifier

        out["slack"] = SlackNotifier(config.slack.bot_token, base_url=config.slack.base_url,
                                     max_rate_limit_retries=config.slack.max_rate_limit_retries,
                                     timeout_s=config.slack.timeout_s)
    else:
        from alerts.sink import JsonlSink
        from monitor.logging_setup import json_logs

        # Its console echo is plain text: in a JSON log stream it would break the shipper's parsing.
        out["sink"] = JsonlSink(config.resolve_path(config.slack.sink_path), console=not json_logs())
    from monitor.grafana import grafana_token

    if config.grafana.url and (token := grafana_token(config.grafana)):
        from monitor.grafana.annotations import GrafanaAnnotationNotifier

        out["grafana"] = GrafanaAnnotationNotifier.from_url(config.grafana.url, token)
    out.update(build_receivers(config))
    return out


# Built in, and present or not depending on the environment the daemon runs in (a Slack
# token in $SLACK_BOT_TOKEN, a Grafana token): a terminal without it cannot tell.
BUILT_IN = frozenset({"slack", "sink", "grafana"})


def may_deliver(config: VigilConfig, notifier: str) -> bool:
    """Whether a daemon on `config` may still deliver `notifier`'s messages: a built-in
    notifier, or a receiver the config names."""
    return notifier in BUILT_IN or any(r.name == notifier for r in config.receivers)
