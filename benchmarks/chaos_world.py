"""The real world the chaos replicas run against, all on 127.0.0.1, all torn down on exit:
PostgreSQL (the shared store), Prometheus backfilled with the scenario's metrics, an
`mlflow server` (behind the recording proxy) holding the scenario's registry history as
replay time reaches it, and the local Slack server (in this process).
"""
from __future__ import annotations

import logging
import threading
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.chaos_proxy import RegistryProxy
from benchmarks.chaos_scenario import Endpoints, Scenario, write_config, write_metrics, write_registry
from monitor.config import MlflowConfig
from monitor.replay.local_mlflow import LocalMlflowServer
from monitor.replay.local_postgres import LocalPostgres
from monitor.replay.local_prometheus import LocalPrometheus
from monitor.replay.registry_bundle import RegistryTimeline, read_registry_jsonl
from monitor.sources.registry import RegistrySource
from tests.fakes.slack_server import FakeSlack

log = logging.getLogger("vigil.chaos")
TOKEN_ENV = "VIGIL_CHAOS_SLACK_TOKEN"
TOKEN = "xoxb-chaos-benchmark"  # FakeSlack's; no real Slack is ever called


@dataclass
class World:
    workdir: Path
    scenario: Scenario
    postgres: LocalPostgres
    prometheus: LocalPrometheus
    mlflow: LocalMlflowServer
    proxy: RegistryProxy
    slack: FakeSlack
    timeline: RegistryTimeline
    config_path: Path
    registry_up: threading.Event = field(default_factory=threading.Event)
    _registry_lock: threading.Lock = field(default_factory=threading.Lock)
    _standby: LocalMlflowServer | None = None
    _closed: bool = False

    def direct_registry(self) -> RegistrySource:
        """The server itself, not the proxy: the driver's own reads and writes."""
        return RegistrySource(MlflowConfig(tracking_uri=self.mlflow.url, timeout_s=5))

    def apply_registry(self, t: float) -> None:
        """The scenario's registry history up to replay time `t` (a deploy at its time);
        while the registry is down this waits for the next step, as a deploy would."""
        if not self.registry_up.is_set():
            return
        with self._registry_lock:
            try:
                self.timeline.apply_until(t)
            except Exception as e:  # the server went down under us: the next step tries again
                log.warning("registry history not applied yet: %s", e)

    def prepare_standby(self, timeout_s: float = 90) -> None:
        """A second server on the same database, started ahead of an outage, idle until then."""
        standby = LocalMlflowServer(self.mlflow.workdir)
        standby.start(timeout_s=timeout_s)
        with self._registry_lock:
            if self._closed:  # torn down while it started (Ctrl-C): it must not outlive the run
                standby.stop()
                return
            self._standby = standby

    def stop_registry(self) -> None:
        """An outage: the server stops; the proxy answers 502 meanwhile."""
        with self._registry_lock:
            self.registry_up.clear()
            self.proxy.upstream = None
            self.mlflow.stop()

    def start_registry(self, timeout_s: float = 90) -> None:
        """The registry back: the standby if one is ready, else the server restarted on a
        fresh port (the old one may linger in TIME_WAIT)."""
        with self._registry_lock:
            if self._standby is not None:
                self.mlflow, self._standby = self._standby, None
            else:
                self.mlflow.port = None
                self.mlflow.start(timeout_s=timeout_s)
            self.timeline.registry = self.direct_registry()
            self.proxy.upstream = self.mlflow.url
            self.registry_up.set()

    def close_registry(self) -> None:
        """Teardown: whichever server runs now, and a standby never used."""
        with self._registry_lock:
            self._closed = True
            self.mlflow.stop()
            if self._standby is not None:
                self._standby.stop()


def open_world(stack: ExitStack, scenario: Scenario, workdir: Path, interval_s: float, settle_s: float,
               seed: int) -> World:
    """Start everything; each server's stop is pushed on `stack` as soon as it runs."""
    workdir.mkdir(parents=True, exist_ok=True)
    write_metrics(workdir / "metrics.om", scenario, settle_s, seed)
    write_registry(workdir / "registry.jsonl", scenario)
    postgres = stack.enter_context(LocalPostgres())
    prometheus = LocalPrometheus(workdir / "metrics.om", workdir / "prometheus")
    stack.callback(prometheus.stop)
    prometheus.start(timeout_s=60)
    mlflow = LocalMlflowServer(workdir / "mlflow")
    stack.callback(mlflow.stop)  # until the world exists; then close_registry stops the current one
    mlflow.start(timeout_s=90)
    proxy = RegistryProxy().start()
    stack.callback(proxy.stop)
    proxy.upstream = mlflow.url
    slack = FakeSlack(TOKEN, channels=tuple(c.lstrip("#") for c in scenario.channels),
                      post_burst=10, update_burst=20).start()
    stack.callback(slack.stop)
    registry = RegistrySource(MlflowConfig(tracking_uri=mlflow.url, timeout_s=5))
    timeline = RegistryTimeline(read_registry_jsonl(workdir / "registry.jsonl"), registry)
    config_path = workdir / "vigil.yaml"
    assert prometheus.url is not None
    write_config(config_path, scenario, Endpoints(postgres.url, prometheus.url, proxy.url, slack.base_url,
                                                  TOKEN_ENV), interval_s)
    world = World(workdir, scenario, postgres, prometheus, mlflow, proxy, slack, timeline, config_path)
    stack.callback(world.close_registry)
    world.registry_up.set()
    world.apply_registry(scenario.start)  # models, v1 and its alias exist before any replica starts
    return world
