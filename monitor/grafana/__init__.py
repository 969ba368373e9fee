"""Vigil's config meets Grafana here: the config -> dashboard-spec mapping, the
provisioning entry points the daemon and CLI call, and the outbox notifier that
posts annotations. `dashboards/` stays config-free and builds from the specs."""
from __future__ import annotations

import os

from monitor.config import GrafanaConfig

TOKEN_ENV = "GRAFANA_TOKEN"


def grafana_token(grafana: GrafanaConfig) -> str | None:
    """grafana.token, else $GRAFANA_TOKEN: one rule for the daemon (provisioning and
    annotations) and `vigil dashboards`, so a token that works for one works for both."""
    return grafana.token or os.environ.get(TOKEN_ENV, "").strip() or None  # no trailing newline, as secret files
