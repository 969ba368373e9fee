"""The daemon's provisioning at start-up, off the start-up path (kept apart from
provision.py so the daemon loads the Grafana SDK only on the thread that needs it)."""
from __future__ import annotations

import logging
import threading

from monitor.config import VigilConfig

log = logging.getLogger("vigil.daemon")


def provision_in_background(config: VigilConfig) -> threading.Thread:
    """The daemon's `grafana.provision_on_start`, on a thread of its own: a slow or hanging
    Grafana (a GET and a POST per dashboard) must hold back neither the cycles nor the
    first lease renewal. Dashboards are a convenience: a failure is logged, never raised."""

    def run() -> None:
        try:
            from monitor.grafana.provision import provision_on_start  # the SDK: loaded only here

            provision_on_start(config)
        except Exception:
            log.exception("dashboard provisioning failed")  # at start-up or after a reload

    thread = threading.Thread(target=run, name="vigil-grafana", daemon=True)
    thread.start()
    return thread
