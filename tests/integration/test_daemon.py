"""The daemon: it keeps monitoring through dead dependencies and broken models, and
stops cleanly on SIGTERM.

A dead Prometheus must show up as NO_DATA findings and an incident, never as a quiet
"all clear"; one model whose cycle raises must not stop the others.
"""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

import monitor.cycle.gather
from alerts.sink import JsonlSink
from monitor.daemon import _safe_cycle, run_daemon
from monitor.store.repository import ModelStateRow, Store
from tests.fixtures_mlflow import closed_port_url
from tests.helpers_vigil import (
    MODEL,
    T0,
    incident_prometheus,
    make_config,
    make_vigil,
    metric_value,
    model_config,
    serving_registry,
)

REPO = Path(__file__).resolve().parents[2]


def wait_for(what: str, check: Callable[[], Any], timeout: float, proc: subprocess.Popen | None = None) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the daemon exited ({proc.returncode}) while waiting for {what}:\n{err[-3000:]}")
        value = check()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


def last_cycle_at(store: Store, model: str) -> float | None:
    with store.tx() as s:
        row = s.get(ModelStateRow, model)
        return row.last_cycle_at if row is not None else None


def raw_last_cycle_at(db: Path, model: str) -> float | None:
    if not db.exists():
        return None
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as con:
            row = con.execute("SELECT last_cycle_at FROM model_state WHERE model = ?", (model,)).fetchone()
    except sqlite3.OperationalError:  # the schema is not there yet
        return None
    return row[0] if row else None


def no_data_incident(store: Store, model: str) -> Any:
    for row in store.incidents(model=model):
        if any(f["kind"] == "no_data" for f in row.findings):
            return row
    return None


# ----------------------------------------------------------------------------- the real process
@pytest.mark.slow
def test_daemon_with_a_dead_prometheus_keeps_cycling_alerts_and_stops_on_sigterm(tmp_path):
    db = tmp_path / "vigil.db"
    config = {
        "sources": {"prometheus": {"url": closed_port_url(), "timeout_s": 0.2, "retries": 0},
                    "mlflow": {"tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}", "timeout_s": 5}},
        "store": {"url": f"sqlite:///{db}"},
        "slack": {"sink_path": "notifications.jsonl"},
        "schedule": {"interval": "1s", "lookback": "5m", "baseline": "10m"},
        "grouping": {"group_wait": "0s"},  # 1 s cycles: the outage's page need not wait 30 s for other models
        "models": [model_config()],
    }
    cfg_path = tmp_path / "vigil.yaml"
    cfg_path.write_text(yaml.safe_dump(config))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("SLACK_BOT_TOKEN", None)
    proc = subprocess.Popen([sys.executable, "-m", "monitor.cli", "--log-level", "WARNING", "run", "--config",
                             str(cfg_path), "--no-api"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        # Read-only until the daemon has created its schema (two processes creating the same
        # fresh SQLite schema at once race: see the report on Store.__init__).
        first = wait_for("a first cycle", lambda: raw_last_cycle_at(db, MODEL), 30, proc)
        store = Store(f"sqlite:///{db}")
        wait_for("a later cycle", lambda: (last_cycle_at(store, MODEL) or 0) > first, 10, proc)
        incident = wait_for("a NO_DATA incident", lambda: no_data_incident(store, MODEL), 10, proc)
        assert proc.poll() is None, "the daemon keeps running with Prometheus down"

        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
        stopped_in = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err[-3000:]
    assert stopped_in < 5, f"SIGTERM to exit took {stopped_in:.1f} s"
    assert "Traceback" not in err, err[-3000:]

    # Blind is never "all clear": the dead source is named in an open warning ...
    assert incident.status == "open" and incident.severity == "warning"
    ctr = [f for f in incident.findings if f["kind"] == "no_data" and f["entity"] == "ctr"]
    assert ctr and "Prometheus unavailable" in ctr[0]["message"]
    assert ctr[0]["evidence"]["query"] == config["models"][0]["kpis"][0]["query"]
    # ... and it reached a person: the sink got it (drained at the latest on shutdown).
    lines = [json.loads(x) for x in (tmp_path / "notifications.jsonl").read_text().splitlines()]
    assert any(x["payload"]["incident_id"] == incident.id for x in lines)
    assert store.outbox_counts().get("pending", 0) == 0


# ----------------------------------------------------------------------------- broken models
def two_models(tmp_path, **kw: Any):
    cfg = make_config(tmp_path, models=[model_config("fraud"), model_config()], **kw)
    registry = serving_registry()
    registry.aliases[("fraud", "champion")] = "1"
    registry.add_version("fraud", "1", created_at=T0 - 30 * 86400)
    return cfg, registry


def test_a_model_whose_cycle_raises_does_not_stop_the_others(tmp_path, monkeypatch):
    cfg, registry = two_models(tmp_path)
    vigil = make_vigil(cfg, prometheus=incident_prometheus(), registry=registry, notifiers={})
    real_window = vigil.window

    def window(m: Any, t: float, *args: Any) -> Any:
        if m.name == "fraud":
            raise RuntimeError("a bug in fraud's cycle")  # the whole cycle fails
        return real_window(m, t, *args)

    monkeypatch.setattr(vigil, "window", window)

    for t in (T0, T0 + 60):
        _safe_cycle(vigil, "fraud")  # the scheduler's job function: logs and counts, never raises
        vigil.clock.set(t)
        _safe_cycle(vigil, MODEL)
    assert metric_value(vigil, "vigil_cycle_errors_total", model="fraud") == 2
    assert metric_value(vigil, "vigil_cycle_errors_total", model=MODEL) == 0
    assert last_cycle_at(vigil.store, MODEL) == T0 + 60
    assert vigil.store.incidents(model=MODEL)[0].severity == "critical"  # SLO breached twice in a row

    reports = vigil.run_all(T0 + 120)
    assert [r.model for r in reports] == [MODEL]
    assert metric_value(vigil, "vigil_cycle_errors_total", model="fraud") == 3


def test_a_raising_signal_gatherer_becomes_no_data_not_silence(tmp_path, monkeypatch):
    cfg, registry = two_models(tmp_path)
    vigil = make_vigil(cfg, prometheus=incident_prometheus(), registry=registry, notifiers={})
    real = monitor.cycle.gather.gather_kpis

    def gather_kpis(sources: Any, req: Any, raw: Any) -> None:
        if req.model.name == "fraud":
            raise ZeroDivisionError("a detector bug")
        real(sources, req, raw)

    monkeypatch.setattr(monitor.cycle.gather, "gather_kpis", gather_kpis)
    fraud, ok = vigil.run_all(T0)
    assert ok.model == MODEL and {"kpi_drop", "slo_breach"} <= {str(f.kind) for f in ok.findings}
    assert fraud.incident_id is not None and fraud.blind
    [finding] = [f for f in fraud.findings if str(f.kind) == "no_data" and f.entity == "kpis"]
    assert "ZeroDivisionError: a detector bug" in finding.message


def test_an_embedded_daemon_stops_on_its_event_and_drains_the_outbox(tmp_path):
    """run_daemon in a worker thread (no signal handlers there): one model's registry
    broken, both cycling on the real scheduler; stop -> running cycles finish, outbox drained."""
    cfg, registry = two_models(tmp_path, schedule={"interval": "1s", "lookback": "30m", "baseline": "1h"})
    registry.broken_models.add("fraud")
    sink = tmp_path / "sink.jsonl"
    vigil = make_vigil(cfg, prometheus=incident_prometheus(), registry=registry,
                       notifiers={"sink": JsonlSink(sink, console=False)})
    started = time.time()
    vigil.clock = type("Clock", (), {"now": staticmethod(lambda: T0 + (time.time() - started))})()
    stop = threading.Event()
    result: list[Any] = []

    def run() -> None:
        try:
            result.append(run_daemon(cfg, serve_api=False, vigil=vigil, stop=stop))
        except BaseException as e:  # reported by the assertion below
            result.append(e)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    wait_for("two cycles of the healthy model",
             lambda: result or metric_value(vigil, "vigil_cycle_duration_seconds_count", model=MODEL) >= 2, 15)
    stop.set()
    worker.join(timeout=10)
    assert not worker.is_alive(), "the daemon did not stop"
    assert result == [0]
    # the model whose registry read raises keeps cycling, with the registry reported down
    assert metric_value(vigil, "vigil_cycle_duration_seconds_count", model="fraud") >= 1
    assert any("registry" in b for b in vigil.last_cycle["fraud"].blind)
    pending = [(r.key, r.next_attempt_at, r.last_error, r.created_at)
               for r in vigil.store.outbox_for_prefix("incident") if r.status == "pending"]
    delivered = len(sink.read_text().splitlines())
    assert vigil.store.outbox_counts() == {"delivered": delivered}, (pending, vigil.clock.now())
    [incident] = vigil.store.incidents(model=MODEL)
    assert any(json.loads(x)["payload"]["incident_id"] == incident.id for x in sink.read_text().splitlines())


def test_a_registry_read_that_raises_is_reported_as_the_registry_down(tmp_path):
    cfg, registry = two_models(tmp_path)
    registry.broken_models.add("fraud")  # the client raises something unexpected
    vigil = make_vigil(cfg, prometheus=incident_prometheus(), registry=registry, notifiers={})
    report = vigil.run_cycle("fraud", T0)
    assert vigil.sources["mlflow"].status == "down" and "RuntimeError" in vigil.sources["mlflow"].detail
    assert any("registry" in b for b in report.blind)  # deploy suspects unknown: never an all clear
    assert metric_value(vigil, "vigil_cycle_errors_total", model="fraud") == 0
