"""What a SIGHUP reload says it did is what it did (monitor/daemon.py `_reload`)."""
from __future__ import annotations

import contextlib
import gc
import logging
import os
import threading
from http.server import BaseHTTPRequestHandler

from apscheduler.schedulers.background import BackgroundScheduler

from monitor.daemon import Runtime, _cycle_job, _reload, build_scheduler
from tests.fakes.local_http import LocalHTTPServer
from tests.helpers_vigil import MODEL, incident_prometheus, make_config, make_vigil
from tests.unit.monitor.test_reload import write


def test_a_reload_whose_scheduler_changes_fail_says_it_was_applied_only_in_part(tmp_path, caplog, monkeypatch):
    """The new configuration was swapped in, then a scheduler change raised: the daemon ran
    the new thresholds on the old schedule while the log said "keeping the running
    configuration" and /metrics counted the reload as refused."""
    runtime = Runtime(make_vigil(make_config(tmp_path), prometheus=incident_prometheus(), notifiers={}),
                      write(tmp_path / "vigil.yaml", tmp_path, schedule={"interval": "30s"},
                            policy={"resolve_after_cycles": 5}))
    scheduler: BackgroundScheduler = build_scheduler(runtime)

    def broken(*_a: object, **_k: object) -> None:
        raise RuntimeError("jobstore unavailable")

    monkeypatch.setattr(scheduler, "reschedule_job", broken)
    metrics = runtime.vigil.metrics
    with caplog.at_level(logging.INFO, logger="vigil.daemon"):
        _reload(runtime, scheduler)
    assert runtime.vigil.config.policy.resolve_after_cycles == 5, "the new configuration runs"
    assert "keeping the running configuration" not in caplog.text, caplog.text
    assert "jobstore unavailable" in caplog.text
    value = metrics.registry.get_sample_value
    assert value("vigil_config_reloads_total", {"result": "refused"}) in (None, 0.0)
    assert value("vigil_config_reloads_total", {"result": "partial"}) == 1.0
    assert value("vigil_config_last_reload_successful") == 0.0, "an alert rule must catch it"


class KeepAlive(BaseHTTPRequestHandler):
    """/ready as Loki and Tempo answer it, over HTTP/1.1 keep-alive as they serve it."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.send_response(200)
        self.send_header("Content-Length", "5")
        self.end_headers()
        self.wfile.write(b"ready")

    def log_message(self, *_a: object) -> None:
        pass


def open_sockets() -> int:
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            n += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
    return n


def test_reloads_do_not_pile_up_loki_and_tempo_connections(tmp_path):
    """Every reload built new Loki and Tempo clients and never closed the old ones: each
    kept its keep-alive connections open until Python's cycle collector happened by (20
    reloads: 50-odd sockets). Unchanged sections keep their clients; replaced ones close."""
    server = LocalHTTPServer(KeepAlive)
    server.start()
    sources = {"prometheus": {"url": "http://127.0.0.1:9"}, "mlflow": {"tracking_uri": "http://127.0.0.1:9"},
               "loki": {"url": server.url}, "tempo": {"url": server.url}}
    path = tmp_path / "vigil.yaml"
    runtime = Runtime(make_vigil(make_config(tmp_path, sources=sources), prometheus=incident_prometheus(),
                                 notifiers={}), str(path))
    gc.disable()  # what the collector may free some day is what leaked
    try:
        runtime.vigil.probe_sources()
        before = open_sockets()
        for i in range(20):  # half change nothing of Loki's, half its timeout
            write(path, tmp_path, sources={**sources, "loki": {"url": server.url, "timeout_s": 10 + i % 2}},
                  policy={"resolve_after_cycles": 2 + i % 3})
            _reload(runtime, None)
            runtime.vigil.probe_sources()
        assert runtime.vigil.health.states["loki"].status == "up"
        assert open_sockets() <= before + 2, "one keep-alive connection per client, both ends"
    finally:
        gc.enable()
        server.stop()


def test_a_replaced_loki_client_is_closed_only_after_the_cycle_using_it(tmp_path, monkeypatch):
    server = LocalHTTPServer(KeepAlive)
    server.start()
    sources = {"prometheus": {"url": "http://127.0.0.1:9"}, "mlflow": {"tracking_uri": "http://127.0.0.1:9"},
               "loki": {"url": server.url}}
    path = tmp_path / "vigil.yaml"
    runtime = Runtime(make_vigil(make_config(tmp_path, sources=sources), prometheus=incident_prometheus(),
                                 notifiers={}), str(path))
    old = runtime.vigil
    loki = old.gather_sources.logs_traces.loki
    holding, release, seen = threading.Event(), threading.Event(), []

    def cycle(model: str, token: int | None = None) -> None:  # a cycle still reading Loki after the reload
        holding.set()
        release.wait(10)
        seen.append(loki.ready().status)

    monkeypatch.setattr(old, "run_cycle", cycle)
    worker = threading.Thread(target=_cycle_job, args=(runtime, MODEL))
    worker.start()
    try:
        assert holding.wait(10)
        write(path, tmp_path, sources={**sources, "loki": {"url": server.url, "timeout_s": 7}})
        _reload(runtime, None)
        assert runtime.vigil is not old and runtime.vigil.gather_sources.logs_traces.loki is not loki
        assert not loki._client.is_closed, "closed under the cycle still using it"
        release.set()
        worker.join(10)
        assert seen == ["up"]
        assert loki._client.is_closed, "nothing uses it any more"
    finally:
        release.set()
        server.stop()
