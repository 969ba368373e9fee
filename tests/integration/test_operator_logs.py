"""What an operator sees from `vigil run --log-format json`: ISO-8601 timestamps, no
APScheduler chatter, a start-up line with the API address, the store (password masked)
and the live notifiers, a loud warning when Slack is off, an access log when asked for,
and the process' own series and vigil_build_info on /metrics."""
from __future__ import annotations

import json
import logging
import os
import platform
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml

from monitor.logging_setup import setup_logging
from monitor.startup import announce
from tests.fixtures_mlflow import closed_port_url
from tests.helpers_vigil import make_config, model_config
from tests.integration.test_api_served import free_port

REPO = Path(__file__).resolve().parents[2]
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def _run_daemon(tmp_path: Path, port: int) -> tuple[list[dict], str]:
    config = {
        "sources": {"prometheus": {"url": closed_port_url(), "timeout_s": 0.2, "retries": 0},
                    "mlflow": {"tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}", "timeout_s": 5}},
        "store": {"url": f"sqlite:///{tmp_path / 'vigil.db'}"},
        "slack": {"sink_path": "notifications.jsonl"},
        "api": {"host": "127.0.0.1", "port": port, "access_log": True},
        "schedule": {"interval": "1s", "lookback": "5m", "baseline": "10m"},
        "models": [model_config()],
    }
    cfg_path = tmp_path / "vigil.yaml"
    cfg_path.write_text(yaml.safe_dump(config))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("SLACK_BOT_TOKEN", None)
    proc = subprocess.Popen([sys.executable, "-m", "monitor.cli", "--log-format", "json", "run", "--config",
                             str(cfg_path)], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    metrics = ""
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
                if "vigil_cycle_duration_seconds_count" in metrics:  # a few cycles have run
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        time.sleep(3)  # several more 1 s cycles: APScheduler would have logged each one
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err[-3000:]
    return [json.loads(line) for line in err.splitlines() if line.strip()], metrics


def test_a_running_daemon_logs_and_exports_what_an_operator_needs(tmp_path):
    port = free_port()
    lines, metrics = _run_daemon(tmp_path, port)

    assert lines and all(ISO.match(d["ts"]) for d in lines), lines[:3]
    # "Running job ..." / "executed successfully" every second were most of the log; a skipped
    # run (a WARNING) still says something.
    assert not [d for d in lines if d["logger"].startswith("apscheduler") and d["level"] in ("DEBUG", "INFO")]
    [started] = [d for d in lines if d["msg"] == "daemon started"]
    assert started["api"] == f"http://127.0.0.1:{port}"
    assert started["store"] == f"sqlite:///{tmp_path / 'vigil.db'}"
    assert started["notifiers"] == ["sink"] and started["version"] and started["cycles"] is True
    [slack_off] = [d for d in lines if d["msg"].startswith("SLACK IS OFF")]
    assert slack_off["level"] == "WARNING" and str(tmp_path / "notifications.jsonl") in slack_off["msg"]
    access = [d for d in lines if d["logger"] == "vigil.access" and d["path"] == "/metrics"]
    assert access and access[0]["method"] == "GET" and access[0]["status"] == 200 and access[0]["duration_ms"] >= 0

    for series in ("process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds",
                   "process_start_time_seconds", "python_info{", "python_gc_objects_collected_total"):
        assert series in metrics, series
    assert f'vigil_build_info{{python="{platform.python_version()}",version="' in metrics


def test_the_start_up_line_masks_the_store_password_and_names_the_notifiers(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1-abc")
    cfg = make_config(tmp_path, store={"url": "postgresql+psycopg://vigil:s3cr3t-pw@db.internal:5432/vigil"},
                      slack={"bot_token": "${SLACK_BOT_TOKEN}"})
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    setup_logging("INFO", "json")
    try:
        announce(cfg, ["slack", "grafana"], serve_api=True, cycles=True)
    finally:
        setup_logging("INFO", "text")
        root.handlers[:], root.level = handlers, level
    err = capsys.readouterr().err
    assert "s3cr3t-pw" not in err
    line = json.loads(err.splitlines()[0])
    assert line["store"] == "postgresql+psycopg://vigil:***@db.internal:5432/vigil"
    assert line["notifiers"] == ["grafana", "slack"] and "SLACK IS OFF" not in err
