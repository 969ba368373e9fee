"""The daemon's provisioning at start-up and after reloads, off the start-up path (kept
apart from provision.py so the daemon loads the Grafana SDK only on the thread that needs it)."""
from __future__ import annotations

import logging
import threading

from monitor.config import VigilConfig

log = logging.getLogger("vigil.daemon")

_lock = threading.Lock()
_pending: list[VigilConfig] = []  # the newest configuration still to provision (at most one)
_worker: threading.Thread | None = None


def provision_in_background(config: VigilConfig) -> threading.Thread:
    """The daemon's `grafana.provision_on_start`, on a thread of its own: a slow or hanging
    Grafana (a GET and a POST per dashboard) must hold back neither the cycles nor the
    first lease renewal. Dashboards are a convenience: a failure is logged, never raised.

    One thread at a time, newest configuration last: two quick reloads each started their
    own, and the older one finishing second put back the dashboards the newer one replaced.
    A call while one provisions only leaves its configuration for that thread to do next."""
    global _worker
    with _lock:
        _pending[:] = [config]
        if _worker is not None and _worker.is_alive():
            return _worker
        _worker = threading.Thread(target=_run, name="vigil-grafana", daemon=True)
        _worker.start()
        return _worker


def _run() -> None:
    global _worker
    while True:
        with _lock:
            if not _pending:
                _worker = None
                return
            config = _pending.pop()
        try:
            from monitor.grafana.provision import provision_on_start  # the SDK: loaded only here

            provision_on_start(config)
        except Exception:
            log.exception("dashboard provisioning failed")  # at start-up or after a reload
