"""SIGHUP's reload and SIGTERM's bookkeeping, in process (the real signals are in
tests/integration/test_daemon_signals.py)."""
from __future__ import annotations

import logging
import threading
import time

import yaml

from monitor.reload import reload_vigil
from monitor.shutdown import InFlight
from tests.helpers_vigil import MODEL, T0, incident_prometheus, make_config, make_vigil, metric_value, model_config


def write(path, tmp_path, **over) -> str:
    data = {"store": {"url": f"sqlite:///{tmp_path / 'vigil.db'}"}, "slack": {"sink_path": "n.jsonl"},
            "sources": {"prometheus": {"url": "http://127.0.0.1:9"}, "mlflow": {"tracking_uri": "http://127.0.0.1:9"}},
            "models": [model_config()], **over}
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_a_valid_file_gives_a_vigil_that_keeps_store_clock_metrics_and_unchanged_clients(tmp_path):
    cfg = make_config(tmp_path, sources={"prometheus": {"url": "http://127.0.0.1:9"},
                                         "mlflow": {"tracking_uri": "http://127.0.0.1:9"}},
                      models=[model_config(), model_config("fraud")])
    old = make_vigil(cfg, prometheus=incident_prometheus(), notifiers={})
    old.run_cycle(MODEL, T0)
    old.run_cycle("fraud", T0)
    path = write(tmp_path / "vigil.yaml", tmp_path, models=[model_config(), model_config("search")],
                 policy={"resolve_after_cycles": 5})
    new, changes = reload_vigil(old, path)
    assert (changes.added, changes.removed, changes.retimed) == (["search"], ["fraud"], False)
    assert new.store is old.store and new.clock is old.clock and new.metrics is old.metrics
    assert new.prometheus is old.prometheus, "an unchanged source keeps its client"
    assert new.config.policy.resolve_after_cycles == 5
    assert metric_value(new, "vigil_last_successful_cycle_timestamp_seconds", model=MODEL) == T0
    assert new.metrics.registry.get_sample_value("vigil_last_successful_cycle_timestamp_seconds",
                                                 {"model": "fraud"}) is None, "a removed model cannot read as stuck"
    assert new.run_cycle(MODEL, T0 + 60).model == MODEL


def test_an_invalid_file_or_another_store_keeps_the_running_configuration(tmp_path, caplog):
    cfg = make_config(tmp_path)
    old = make_vigil(cfg, notifiers={})
    bad = tmp_path / "bad.yaml"
    write(bad, tmp_path, schedule={"interval": "soon"})
    with caplog.at_level(logging.ERROR, logger="vigil.daemon"):
        assert reload_vigil(old, str(bad)) is None
        assert "schedule.interval: expected a duration" in caplog.text
        other = write(tmp_path / "other.yaml", tmp_path, store={"url": f"sqlite:///{tmp_path / 'other.db'}"})
        assert reload_vigil(old, other) is None
        assert "store.url changed" in caplog.text
    assert reload_vigil(old, None) is None, "an embedded daemon has no file to reload"


def test_in_flight_waits_for_running_jobs_and_refuses_new_ones_once_closed():
    jobs, release = InFlight(), threading.Event()

    def job() -> None:
        with jobs.track("cycle m") as admitted:
            assert admitted
            release.wait(5)

    worker = threading.Thread(target=job)
    worker.start()
    time.sleep(0.05)
    jobs.close()
    with jobs.track("cycle late") as admitted:
        assert not admitted
    assert jobs.wait_idle(time.monotonic() + 0.2, threading.Event()) == ["cycle m"], "the grace ran out"
    release.set()
    assert jobs.wait_idle(time.monotonic() + 5, threading.Event()) == []
    worker.join()


def test_a_receiver_added_by_a_reload_is_built(tmp_path, monkeypatch):
    monkeypatch.setenv("PD_ROUTING_KEY", "0" * 32)
    old = make_vigil(make_config(tmp_path, sources={"prometheus": {"url": "http://127.0.0.1:9"},
                                                     "mlflow": {"tracking_uri": "http://127.0.0.1:9"}}))
    assert "pd" not in old.notifiers
    path = write(tmp_path / "vigil.yaml", tmp_path,
                 receivers=[{"name": "pd", "kind": "pagerduty", "routing_key_env": "PD_ROUTING_KEY"}])
    new, _ = reload_vigil(old, path)
    assert "pd" in new.notifiers, "Slack and Grafana unchanged, yet the new receiver is there"


def test_a_new_interval_retimes_the_sweep_and_the_readiness_watch(tmp_path):
    """Sweep mode (the default from 50 models): the sweep job runs at the reloaded interval,
    the interval /readyz now judges the last cycle's age by."""
    from apscheduler.schedulers.background import BackgroundScheduler

    from monitor.daemon import Runtime, _apply_jobs, build_scheduler

    cfg = make_config(tmp_path, schedule={"interval": "30s", "lookback": "30m", "baseline": "1h", "sweep": True})
    runtime = Runtime(make_vigil(cfg, prometheus=incident_prometheus(), notifiers={}), None)
    scheduler: BackgroundScheduler = build_scheduler(runtime)
    assert scheduler.get_job("sweep").trigger.interval.total_seconds() == 30
    path = write(tmp_path / "vigil.yaml", tmp_path, schedule={"interval": "5s", "sweep": True})
    new, changes = reload_vigil(runtime.vigil, path)
    assert changes.retimed
    runtime.swap(new)
    _apply_jobs(scheduler, runtime, changes)
    assert scheduler.get_job("sweep").trigger.interval.total_seconds() == 5
    assert runtime.watch is not None and runtime.watch.interval == 5


def test_a_model_removed_by_a_reload_leaves_no_verdict_in_metrics(tmp_path):
    """Its last state (say critical, an incident open) stayed in /metrics for the life of
    the process: an alert on vigil_model_state or vigil_incidents_open fired for a model
    nobody watches any more."""
    cfg = make_config(tmp_path, sources={"prometheus": {"url": "http://127.0.0.1:9"},
                                         "mlflow": {"tracking_uri": "http://127.0.0.1:9"}},
                      models=[model_config(), model_config("fraud")])
    old = make_vigil(cfg, prometheus=incident_prometheus(), notifiers={})
    old.run_cycle("fraud", T0)
    assert old.metrics.registry.get_sample_value("vigil_model_state", {"model": "fraud"}) is not None
    new, _ = reload_vigil(old, write(tmp_path / "vigil.yaml", tmp_path, models=[model_config()]))
    gauges = {s.name for f in new.metrics.registry.collect() if f.type == "gauge" for s in f.samples
              if s.labels.get("model") == "fraud"}
    assert gauges == set()


def test_a_reload_never_changes_the_audit_key_under_the_running_chain(tmp_path, caplog):
    """A SIGHUP (to change a threshold, say) re-read the audit key: a key file the secret
    store had rotated meanwhile, or an `audit:` section edited, re-keyed (or un-keyed) the
    chain mid-way, and from then on `vigil audit verify` failed. Keys cannot be rotated: the
    reload is refused, naming the audit key, and the chain keeps its key."""
    from monitor.audit.verify import verify_log
    from monitor.config import load_config

    key = tmp_path / "audit.key"
    key.write_text("first-audit-key-0123456789\n")
    path = write(tmp_path / "vigil.yaml", tmp_path, audit={"key_file": "audit.key"})
    old = make_vigil(load_config(path), notifiers={})
    old.store.audit("alice", "incident.ack", "incident:1", {})
    running = old.store.audit_key
    key.write_text("second-audit-key-0123456789\n")  # rotated by the secret store
    with caplog.at_level(logging.ERROR, logger="vigil.daemon"):
        assert reload_vigil(old, write(tmp_path / "vigil.yaml", tmp_path, audit={"key_file": "audit.key"},
                                       policy={"resolve_after_cycles": 5})) is None
        assert "audit" in caplog.text and "key" in caplog.text
        assert reload_vigil(old, write(tmp_path / "vigil.yaml", tmp_path)) is None, "a key dropped"
    assert old.store.audit_key is running
    old.store.audit("bob", "incident.ack", "incident:2", {})
    assert verify_log(old.store, running, None).chain.ok
    key.write_text("first-audit-key-0123456789")  # the same key (no newline) reloads fine
    assert reload_vigil(old, write(tmp_path / "vigil.yaml", tmp_path, audit={"key_file": "audit.key"})) is not None


def test_a_reload_retimes_the_purge_and_the_audit_checkpoint_jobs(tmp_path):
    """A new `retention.purge_interval` or `audit.checkpoint_interval_s` was validated,
    logged as reloaded, and silently ignored: the jobs kept the old period until a restart."""
    from apscheduler.schedulers.background import BackgroundScheduler

    from monitor.daemon import Runtime, _apply_jobs, build_scheduler

    runtime = Runtime(make_vigil(make_config(tmp_path), prometheus=incident_prometheus(), notifiers={}), None)
    scheduler: BackgroundScheduler = build_scheduler(runtime)
    assert scheduler.get_job("retention-purge").trigger.interval.total_seconds() == 3600
    path = write(tmp_path / "vigil.yaml", tmp_path, retention={"purge_interval": "10m"},
                 audit={"checkpoint_interval_s": 15})
    new, changes = reload_vigil(runtime.vigil, path)
    runtime.swap(new)
    _apply_jobs(scheduler, runtime, changes)
    assert scheduler.get_job("retention-purge").trigger.interval.total_seconds() == 600
    assert scheduler.get_job("audit-checkpoint").trigger.interval.total_seconds() == 15


def test_a_model_added_by_a_reload_gets_its_grafana_dashboard(tmp_path, monkeypatch):
    """`grafana.provision_on_start` provisioned the models of the start only: a model added
    by SIGHUP had no dashboard, and every Slack message about it linked to a 404."""
    from monitor.daemon import Runtime, _reload
    from tests.fakes.grafana_server import FakeGrafana

    monkeypatch.setenv("GRAFANA_TOKEN", "g-token")
    with FakeGrafana(tokens={"g-token": "admin"}) as grafana:
        grafana_cfg = {"url": grafana.url, "provision_on_start": True}
        runtime = Runtime(make_vigil(make_config(tmp_path, grafana=grafana_cfg), notifiers={}),
                          write(tmp_path / "vigil.yaml", tmp_path, grafana=grafana_cfg,
                                models=[model_config(), model_config("search")]))

        class Scheduler:  # per-model jobs: what _apply_jobs asks of APScheduler
            def get_job(self, _job: str) -> None:
                return None

            def add_job(self, *_a: object, **_k: object) -> None:
                pass

        _reload(runtime, Scheduler())  # type: ignore[arg-type]
        assert [m.name for m in runtime.vigil.config.models] == [MODEL, "search"]
        deadline = time.monotonic() + 10
        while not any("search" in uid for uid in grafana.dashboards) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert any("search" in uid for uid in grafana.dashboards), sorted(grafana.dashboards)


def test_a_refused_reload_logs_each_error_with_its_line_as_check_config_prints_it(tmp_path, caplog):
    """The README promises the refusal is logged as `vigil check-config` prints it; the log
    left out the file and line, so an SRE had to hunt for `schedule.interval` in the file."""
    old = make_vigil(make_config(tmp_path), notifiers={})
    bad = tmp_path / "bad.yaml"
    bad.write_text("schedule:\n  interval: soon\nmodels:\n  - name: m\n")
    with caplog.at_level(logging.ERROR, logger="vigil.daemon"):
        assert reload_vigil(old, str(bad)) is None
    assert f"{bad}:2: schedule.interval: expected a duration" in caplog.text, caplog.text


def test_a_source_removed_by_a_reload_leaves_no_down_state_in_metrics(tmp_path):
    """Loki down, then taken out of the config by a reload: vigil_source_up{source="loki"} 0
    stayed in /metrics (the metrics outlive the reload), and VigilSourceDown fired until a
    restart for a source nobody uses any more."""
    loki = {"url": "http://127.0.0.1:9"}
    old = make_vigil(make_config(tmp_path, sources={"prometheus": {"url": "http://127.0.0.1:9"},
                                                    "mlflow": {"tracking_uri": "http://127.0.0.1:9"}, "loki": loki}),
                     notifiers={})
    old.health.mark("loki", False, "connection refused")
    old.health.mark("prometheus", True)
    assert old.metrics.registry.get_sample_value("vigil_source_up", {"source": "loki"}) == 0
    new, _ = reload_vigil(old, write(tmp_path / "vigil.yaml", tmp_path))
    assert new.metrics.registry.get_sample_value("vigil_source_up", {"source": "loki"}) is None
    assert new.metrics.registry.get_sample_value("vigil_source_up", {"source": "prometheus"}) == 1


def test_a_reload_keeps_a_broken_rollback_layer_down_in_metrics_and_readyz(tmp_path):
    """A rollback that could not move the alias marks `rollback:mlflow` down (no cycle marks it
    again until the next rollback). A SIGHUP for anything else took that series out of
    /metrics and /readyz: VigilSourceDown resolved while the next rollback would fail too."""
    old = make_vigil(make_config(tmp_path, sources={"prometheus": {"url": "http://127.0.0.1:9"},
                                                    "mlflow": {"tracking_uri": "http://127.0.0.1:9"}}),
                     notifiers={})
    old.health.mark("rollback:mlflow", False, "alias move refused: 503")
    new, _ = reload_vigil(old, write(tmp_path / "vigil.yaml", tmp_path, policy={"resolve_after_cycles": 5}))
    assert new.metrics.registry.get_sample_value("vigil_source_up", {"source": "rollback:mlflow"}) == 0
    assert new.health.is_down("rollback:mlflow"), "/readyz must still say the rollback layer failed"


def test_a_rollback_layer_the_reload_removed_leaves_metrics_and_readyz(tmp_path):
    """A KServe layer that failed its last rollback is down; the SRE takes the serving layer
    out of the config (the alias is all Vigil moves now) and reloads. No model uses KServe
    any more, so nothing marks it again: kept, /readyz said degraded and VigilSourceDown
    fired for it until a restart."""
    kserve = {"kind": "kserve", "namespace": "ml", "name": "recommender",
              "storage_uri_template": "s3://models/{version}"}
    old = make_vigil(make_config(tmp_path, models=[model_config(serving=kserve)]), notifiers={})
    old.health.mark("rollback:kserve", False, "kserve: 503")
    old.health.mark("rollback:mlflow_alias", False, "alias move refused: 503")
    new, _ = reload_vigil(old, write(tmp_path / "vigil.yaml", tmp_path, models=[model_config()]))
    assert new.metrics.registry.get_sample_value("vigil_source_up", {"source": "rollback:kserve"}) is None
    assert "rollback:kserve" not in new.health.states, "/readyz must not report a layer no model uses"
    # the alias layer is still every model's first: its last word stands
    assert new.health.is_down("rollback:mlflow_alias")
    assert new.metrics.registry.get_sample_value("vigil_source_up", {"source": "rollback:mlflow_alias"}) == 0
