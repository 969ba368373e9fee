"""Issue 12, secrets never leave: a URL's credentials are redacted in /readyz (which needs
no token), logs, API error bodies and Slack/sink messages (monitor/redact.py). On the old
code /readyz returned `http://user:password@...` verbatim, in its url and in its error
detail, and so did the cycle's findings, the messages and the log lines quoting them.
And /readyz no longer says ready while no source was ever checked (`vigil serve` said
ready with every source `unknown`)."""
from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from alerts.outbox import MessageKind
from monitor.api.app import create_app
from monitor.clock import ReplayClock
from monitor.logging_setup import setup_logging
from monitor.redact import redact
from monitor.store.repository import Store
from monitor.vigil import Vigil
from tests.fixtures_mlflow import closed_port_url
from tests.helpers_vigil import MODEL, T0, make_config, make_vigil, serving_registry
from tests.unit.monitor.test_api import ROLLBACK

PASSWORD = "hunter2-8d1f"


@pytest.mark.parametrize("text, expected", [
    (f"http://vigil:{PASSWORD}@prom:9090/api", "http://vigil:***@prom:9090/api"),
    (f"GET https://u:{PASSWORD}@h/x?q=1 failed", "GET https://u:***@h/x?q=1 failed"),
    (f"postgresql+psycopg://app:{PASSWORD}@db/vigil", "postgresql+psycopg://app:***@db/vigil"),
    (f"http://u:p@ss{PASSWORD}@host/", "http://u:***@host/"),  # an '@' inside the password
    (f"http://loki:3100/api?token={PASSWORD}&limit=5", "http://loki:3100/api?token=***&limit=5"),
    (f"http://h/?api_key={PASSWORD}", "http://h/?api_key=***"),
    (f"http://h/?x=1&access_token={PASSWORD}", "http://h/?x=1&access_token=***"),
    ("http://prom:9090/api?query=up", "http://prom:9090/api?query=up"),
    ("http://user@host:9090/", "http://user@host:9090/"),
    ("see http://a:1@h1 and http://b:2@h2", "see http://a:***@h1 and http://b:***@h2"),
])
def test_redact(text, expected):
    assert redact(text) == expected


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    """What Vigil's own log handler (setup_logging, JSON) writes, for the test's duration."""
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    setup_logging("INFO", "json")
    out = io.StringIO()
    root.handlers[0].setStream(out)  # type: ignore[attr-defined]
    try:
        yield out
    finally:
        root.handlers[:] = saved
        root.setLevel(level)


def test_logs_redact_the_message_its_arguments_and_its_extra_fields(logs):
    url = f"http://vigil:{PASSWORD}@prom:9090"
    logging.getLogger("vigil.test").warning("cannot reach %s", url, extra={"url": url, "urls": [url]})
    line = json.loads(logs.getvalue())
    assert PASSWORD not in logs.getvalue()
    assert line["msg"] == "cannot reach http://vigil:***@prom:9090" and line["url"] == "http://vigil:***@prom:9090"


def secret_vigil(tmp_path: Any, **sections: Any) -> Vigil:
    """A Vigil whose real Prometheus client has credentials in its (unreachable) URL."""
    url = closed_port_url().replace("http://", f"http://vigil:{PASSWORD}@")
    cfg = make_config(tmp_path, sources={"prometheus": {"url": url, "timeout_s": 0.5, "retries": 0}}, **sections)
    return Vigil(cfg, clock=ReplayClock(T0), store=Store(cfg.store.url), registry=serving_registry())


def test_readyz_the_findings_the_messages_and_the_logs_never_show_the_password(tmp_path, logs):
    vigil = secret_vigil(tmp_path)
    client = TestClient(create_app(vigil), raise_server_exceptions=False)
    report = vigil.run_cycle(MODEL, T0)
    assert report.blind, "Prometheus is down: the cycle says it could not see"
    vigil.deliver()

    r = client.get("/readyz")
    assert r.json()["sources"]["prometheus"]["url"].startswith("http://vigil:***@127.0.0.1:")
    assert r.json()["sources"]["prometheus"]["status"] == "down"
    assert "vigil:***@" in r.json()["sources"]["prometheus"]["detail"]
    outputs = {"/readyz": r.text, "findings": json.dumps([f.to_dict() for f in report.findings]),
               "incidents API": client.get("/v1/incidents").text,
               "sink": (tmp_path / "notifications.jsonl").read_text() if (tmp_path / "notifications.jsonl").exists()
               else "", "logs": logs.getvalue()}
    for where, text in outputs.items():
        assert PASSWORD not in text, where


def test_a_message_quoting_a_secret_is_redacted_before_it_is_stored_or_sent(tmp_path):
    vigil = make_vigil(make_config(tmp_path), notifiers=None)  # the JSON-lines sink
    payload = {"model": MODEL, "status": "failed", "from_version": "2", "to_version": "1",
               "detail": f"webhook https://deploy/hook?token={PASSWORD} refused"}
    with vigil.store.tx() as s:
        vigil.store.enqueue(s, "sink", MessageKind.ROLLBACK, f"rollback:{MODEL}:k1", payload, T0)
    vigil.deliver(T0)
    sink = (tmp_path / "notifications.jsonl").read_text()
    assert "token=***" in sink and PASSWORD not in sink


def test_an_api_error_quoting_a_url_with_a_password_is_redacted(tmp_path, monkeypatch):
    from tests.unit.monitor.test_api import build

    api = build(tmp_path, monkeypatch)
    api.deploy("2", T0 - 3600)
    api.registry.fail_set_alias = f"POST http://admin:{PASSWORD}@mlflow:5000/api/2.0 refused"
    r = api.post(ROLLBACK, {"reason": "ctr dropped"})
    assert r.status_code == 502 and "admin:***@mlflow" in r.json()["error"]
    assert PASSWORD not in r.text


def test_readyz_is_not_ready_until_a_source_has_been_checked(tmp_path):
    vigil = make_vigil(make_config(tmp_path), notifiers={})
    client = TestClient(create_app(vigil), raise_server_exceptions=False)
    r = client.get("/readyz")
    assert r.status_code == 503 and {s["status"] for s in r.json()["sources"].values()} == {"unknown"}
    assert r.json()["reasons"] == ["no source checked yet: waiting for the first check of prometheus, mlflow"]
    vigil.probe_sources()  # the daemon's probe, at start and every interval (monitor/probe.py)
    r = client.get("/readyz")
    assert r.status_code == 200 and r.json()["status"] == "ready"
    vigil.prometheus.down = True
    vigil.probe_sources()
    assert client.get("/readyz").json()["status"] == "degraded"
