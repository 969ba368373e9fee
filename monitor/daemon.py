"""`vigil run`: APScheduler cycles (one job per model) plus the HTTP API.

SIGTERM/SIGINT stop new cycles, let the running ones finish (`shutdown(wait=True)`),
drain what the outbox can send, and exit 0. A cycle that raises is logged and
counted; the next one runs on schedule.
"""
from __future__ import annotations

import logging
import signal
import threading
import time
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler

from monitor.clock import Clock
from monitor.config import VigilConfig
from monitor.vigil import Vigil

log = logging.getLogger("vigil.daemon")
SENDER_INTERVAL_S = 5.0


def _safe_cycle(vigil: Vigil, model: str) -> None:
    try:
        vigil.run_cycle(model)
    except Exception:  # one failing cycle never stops the daemon
        vigil.metrics.cycle_errors.labels(model).inc()
        log.exception("cycle failed", extra={"model": model})


def _safe_deliver(vigil: Vigil) -> None:
    try:
        vigil.deliver()
    except Exception:  # messages stay in the outbox for the next round
        log.exception("outbox delivery round failed")


def build_scheduler(vigil: Vigil) -> BackgroundScheduler:
    sched = vigil.config.schedule
    scheduler = BackgroundScheduler(
        timezone="UTC",
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": int(sched.misfire_grace)},
    )
    now = time.time()
    for i, m in enumerate(vigil.config.models):
        # Spread models over the interval so they do not all hit Prometheus at once.
        offset = sched.interval * i / max(len(vigil.config.models), 1)
        scheduler.add_job(_safe_cycle, "interval", args=[vigil, m.name], seconds=sched.interval,
                          id=f"cycle:{m.name}", name=f"cycle {m.name}",
                          next_run_time=_dt(now + offset))
    # The sender runs on its own thread: a Slack rate limit must not delay a cycle.
    scheduler.add_job(_safe_deliver, "interval", args=[vigil], seconds=SENDER_INTERVAL_S, id="outbox",
                      name="outbox sender", next_run_time=_dt(now + 1))
    return scheduler


def _dt(t: float) -> Any:
    import datetime as dt

    return dt.datetime.fromtimestamp(t, dt.UTC)


def _provision(config: VigilConfig) -> None:
    try:
        from monitor.grafana.provision import provision_on_start

        provision_on_start(config)
    except Exception:  # dashboards are a convenience, never a reason not to monitor
        log.exception("dashboard provisioning at start-up failed")


def run_daemon(config: VigilConfig, *, serve_api: bool = True, vigil: Vigil | None = None,
               stop: threading.Event | None = None, clock: Clock | None = None) -> int:
    stop = stop or threading.Event()
    # Handlers first: a SIGTERM during start-up (provisioning, first cycles) must still
    # end in the orderly shutdown below, not in Python's default instant death.
    previous = _on_stop_signals(stop) if not serve_api else {}
    vigil = vigil or Vigil(config, clock=clock)
    _provision(config)
    scheduler = build_scheduler(vigil)
    scheduler.start()
    log.info("daemon started", extra={"models": len(config.models), "interval_s": config.schedule.interval})
    try:
        if serve_api:
            _serve(vigil)
        else:
            while not stop.is_set():
                stop.wait(1.0)
    finally:
        log.info("stopping: waiting for running cycles to finish")
        scheduler.shutdown(wait=True)
        _safe_deliver(vigil)
        vigil.store.close()
        for sig, handler in previous.items():
            if handler is not None:  # None: installed outside Python, cannot be put back
                signal.signal(sig, handler)
        log.info("daemon stopped")
    return 0


def _on_stop_signals(stop: threading.Event) -> dict[int, Any]:
    """SIGTERM/SIGINT set `stop`; the previous handlers, to restore. Python only lets the
    main thread install handlers: a daemon embedded in another thread (tests, a host
    application) is stopped through `stop` alone."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    previous: dict[int, Any] = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        previous[sig] = signal.signal(sig, lambda *_: stop.set())
    return previous


def _serve(vigil: Vigil) -> None:
    import uvicorn

    from monitor.api.app import create_app

    api = vigil.config.api
    server = uvicorn.Server(uvicorn.Config(create_app(vigil), host=api.host, port=api.port, log_level="warning",
                                           access_log=False))
    server.run()  # returns on SIGTERM/SIGINT (uvicorn installs the handlers)


def serve_api_only(config: VigilConfig, clock: Clock | None = None) -> int:
    vigil = Vigil(config, clock=clock)
    _serve(vigil)
    return 0
