"""What the daemon checks and says once at start-up: the store's schema is the one this
Vigil needs (else it refuses, naming the command to run), and one line an operator reads
first — where the API listens, which store (password masked), which notifiers are live —
with a loud warning when Slack is off and messages only go to a file."""
from __future__ import annotations

import logging
import platform

from monitor.config import VigilConfig
from monitor.redact import redact
from monitor.store import schema
from monitor.store.repository import Store
from monitor.version import vigil_version

log = logging.getLogger("vigil.daemon")


def require_schema(store: Store, config_path: str | None) -> None:
    """Raise `schema.StoreBehind` (its message names `vigil db upgrade ...`) unless the store is at head."""
    how = f"--config {config_path}" if config_path else f"--store '{redact(store.url)}'"
    try:
        schema.require_current(store.engine, how)
    except schema.StoreBehind as e:
        log.error("refusing to start: %s", e)
        raise


def announce(config: VigilConfig, notifiers: list[str], *, serve_api: bool, cycles: bool) -> None:
    api = f"http://{config.api.host}:{config.api.port}" if serve_api else None
    log.info("daemon started", extra={
        "version": vigil_version(), "python": platform.python_version(), "api": api, "cycles": cycles,
        "store": redact(config.store.url), "models": len(config.models), "interval_s": config.schedule.interval,
        "notifiers": sorted(notifiers), "retention": {k: v for k, v in config.retention.model_dump().items()}})
    if cycles and not config.slack.bot_token:
        log.warning("SLACK IS OFF: slack.bot_token is not set, so no alert reaches anyone on Slack; messages are "
                    "written to %s only", config.resolve_path(config.slack.sink_path))
