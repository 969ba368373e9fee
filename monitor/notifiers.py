"""Which notifiers and log/trace clients a configuration asks for, built once at start-up."""
from __future__ import annotations

import logging
from typing import Any

from alerts.outbox import DeliveryResult, Notifier, OutboxMessage
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


class LeftToDaemon:
    """A notifier only the daemon has (its Slack token lives in the daemon's environment, not
    in a terminal's): a one-off command writes its messages for it, so they reach the people
    the daemon tells, and leaves them to the daemon's sender (`leave_to_daemon`)."""

    leave_to_daemon = True

    def __init__(self, name: str) -> None:
        self.name = name

    def deliver(self, message: OutboxMessage) -> DeliveryResult:
        raise RuntimeError(f"{self.name}: this process cannot send it; the daemon's sender does")


def terminal_notifiers(config: VigilConfig, daemon_chat: str | None) -> dict[str, Notifier]:
    """`default_notifiers` for a one-off command (`vigil rollback`). `daemon_chat`: the chat
    notifier the daemon last wrote for ("slack" or "sink", from the store). Without a Slack
    token here (`${SLACK_BOT_TOKEN:-}` unset in a terminal) while the daemon has one, the
    JSON-lines sink would take the messages to a local file and Slack never see them."""
    out = default_notifiers(config)
    if "sink" in out and daemon_chat == "slack":
        del out["sink"]
        out["slack"] = LeftToDaemon("slack")
    return out


# Built in, and present or not depending on the environment the daemon runs in (a Slack
# token in $SLACK_BOT_TOKEN, a Grafana token): a terminal without it cannot tell.
BUILT_IN = frozenset({"slack", "sink", "grafana"})


def may_deliver(config: VigilConfig, notifier: str) -> bool:
    """Whether a daemon on `config` may still deliver `notifier`'s messages: a built-in
    notifier, or a receiver the config names."""
    return notifier in BUILT_IN or any(r.name == notifier for r in config.receivers)
