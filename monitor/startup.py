"""What the daemon checks and says once at start-up: the store's schema is the one this
Vigil needs (else it refuses, naming the command to run), the store is its own (SQLite's
single-daemon lock, or a replica's membership on PostgreSQL), and one line an operator reads
first — where the API listens, which store (password masked), which notifiers are live —
with a loud warning when Slack is off and messages only go to a file, and an error when Slack
rejects the bot token (asked beside the start of `vigil run` and `vigil serve`, monitor/slack_check.py)."""
from __future__ import annotations

import logging
import platform

from monitor.config import VigilConfig
from monitor.config_messages import button_warnings
from monitor.cycle.rollback_lease import BesideDaemon
from monitor.ownership import ownership_for
from monitor.redact import redact
from monitor.replicas import LeaseMetrics
from monitor.replicas.fence import NoFence
from monitor.replicas.single_daemon import sqlite_file
from monitor.runtime import Runtime
from monitor.slack_check import check_slack_in_background
from monitor.store import schema
from monitor.store.repository import Store
from monitor.version import vigil_version
from monitor.vigil import Vigil

log = logging.getLogger("vigil.daemon")


def prepare(vigil: Vigil, config_path: str | None, cycles: bool) -> Runtime:
    """The checks that may refuse the start, before anything starts. A refused start lets go
    of the store as a stopped daemon does: its connections (a PostgreSQL server's slots) and
    SQLite files stayed open for the life of a process embedding the daemon."""
    try:
        runtime = Runtime(vigil, config_path)
        require_schema(vigil.store, config_path)  # a store behind: refuse, naming `vigil db upgrade`
        if cycles:  # a refused start's only line is the refusal
            take_ownership(runtime)
            check_slack_in_background(vigil.config, config_path)  # logged, never a refusal
        else:
            hold_no_lease(vigil)
            # `vigil serve` answers Slack's buttons with the same token: a wrong one shows at start too.
            check_slack_in_background(vigil.config, config_path, channels=False)
        return runtime
    except BaseException:
        vigil.close()
        vigil.store.close()
        raise


def take_ownership(runtime: Runtime) -> None:
    """The single-daemon lock (SQLite, raising `AnotherDaemonRunning`) or a replica's membership (PostgreSQL)."""
    vigil = runtime.vigil
    runtime.owner = ownership_for(vigil.store, vigil.config.schedule.interval, LeaseMetrics(vigil.metrics.registry),
                                  forget=runtime.forget_model)
    vigil.fence, vigil.lease_token = runtime.owner.fence, runtime.owner.token  # an API's rollback drives under it


def hold_no_lease(vigil: Vigil, role: str = "a `vigil serve` moving layers") -> None:
    """A process without cycles beside replicas (`vigil serve`, the terminal's `vigil rollback` on
    PostgreSQL) holds no model's lease: a rollback asked of it is recorded, and the holder moves it.
    Beside a daemon on a SQLite file: recorded, and left to the daemon while one holds the store;
    else driven holding the store's single-daemon lock (rollback_lease), `role` naming it."""
    if vigil.store.engine.dialect.name == "postgresql":
        vigil.fence, vigil.lease_token = NoFence(), lambda _model: None
    elif sqlite_file(vigil.store.url) is not None:
        vigil.fence = BesideDaemon(vigil.store.url, role)


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
    api_base = config.api.public_url or f"http://{config.api.host}:{config.api.port}"
    for line in button_warnings(config.slack.bot_token, config.slack.signing_secret, api_base) if cycles else []:
        log.warning(line)
