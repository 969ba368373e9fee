"""Issue 12, against the API served by uvicorn on a port (as `vigil serve` runs it):

- a 50 MB body without a token is refused from its headers: the 401 arrives while 49 MB of
  the declared body were never even sent (the old code read and parsed the whole body
  first, so it would wait for them);
- a Slack "Roll back" press with a registry that takes 5 s is answered within a second,
  `/healthz` stays fast meanwhile, and afterwards the incident message is updated in
  place and the person who pressed gets the result through response_url (the old code
  ran the rollback inside the request, on the event loop: 5.2 s, `/healthz` 5.1 s).
"""
from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from monitor.api.app import create_app
from monitor.http_server import ApiThread
from tests.fakes.slack_server import FakeSlack
from tests.helpers_vigil import (
    MODEL,
    T0,
    MemoryRegistry,
    incident_prometheus,
    make_config,
    make_vigil,
    serving_registry,
)
from tests.unit.monitor.test_slack_interactions import ALICE, SECRET, click, signed

TOKEN = "vigil-served-test-token-2b8e"
BOT = "xoxb-vigil-served-bot"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SlowRegistry(MemoryRegistry):
    """MLflow taking `delay` seconds to move an alias."""

    delay = 0.0

    def set_alias(self, name: str, alias: str, version: str) -> None:
        time.sleep(self.delay)
        super().set_alias(name, alias, version)


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack(token=BOT, channels=("recsys-alerts", "ml-oncall")) as fake:
        yield fake


@pytest.fixture
def served(tmp_path, monkeypatch, slack) -> Iterator[tuple[str, Any, SlowRegistry]]:
    monkeypatch.setenv("VIGIL_SERVED_TOKEN", TOKEN)
    monkeypatch.setenv("SLACK_SERVED_SECRET", SECRET)
    monkeypatch.setenv("SLACK_SERVED_BOT", BOT)
    cfg = make_config(tmp_path, api={"token": "${VIGIL_SERVED_TOKEN}"}, policy={"rollback": {"enabled": False}},
                      slack={"bot_token": "${SLACK_SERVED_BOT}", "base_url": slack.base_url,
                             "signing_secret": "${SLACK_SERVED_SECRET}", "actors": {"users": [ALICE]}})
    registry = SlowRegistry(**vars(serving_registry(versions=("1", "2"))))
    vigil = make_vigil(cfg, prometheus=incident_prometheus(), registry=registry, notifiers=None)  # real Slack client
    vigil.deploys.poll(cfg.model(MODEL), T0 - 7200)
    registry.aliases[(MODEL, "champion")] = "2"
    vigil.deploys.poll(cfg.model(MODEL), T0 - 900)
    app = create_app(vigil)
    port = free_port()
    api = ApiThread(app, "127.0.0.1", port).start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.05)
    try:
        yield base, vigil, registry
    finally:
        assert api.stop(10)


def test_a_huge_body_without_a_token_is_refused_from_its_headers(served):
    base, vigil, _ = served
    port = int(base.rsplit(":", 1)[1])
    declared = 50 * 1024 * 1024
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        started = time.monotonic()
        s.sendall(f"POST /v1/samples HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                  f"Content-Length: {declared}\r\n\r\n".encode())
        s.sendall(b'{"model": "recommender", "records": [' + b" " * (1024 * 1024))  # 1 MB of the 50
        head = s.recv(65536).decode("latin-1")
        took = time.monotonic() - started
    assert head.startswith("HTTP/1.1 401"), head[:200]
    assert "\r\nwww-authenticate: bearer\r\n" in head.lower()
    assert took < 1.0, f"401 after {took:.2f} s"
    assert vigil.store.samples(MODEL, 0, T0 + 1) == [], "the handler never ran"


def test_a_slack_rollback_with_a_slow_registry_is_answered_at_once(served, slack):
    base, vigil, registry = served
    incident_id = vigil.run_cycle(MODEL, T0).incident_id
    vigil.deliver()
    [owner] = slack.messages("recsys-alerts")
    assert owner.updates == 0
    registry.delay = 5.0
    url = slack.response_url()
    body, headers = signed(click("rollback", incident_id, url))

    started = time.monotonic()
    r = httpx.post(f"{base}/v1/slack/actions", content=body, headers=headers, timeout=10)
    answered = time.monotonic() - started
    assert r.status_code == 200 and answered < 1.0, f"answered after {answered:.2f} s"
    health = []
    for _ in range(5):
        t = time.monotonic()
        assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200
        health.append(time.monotonic() - t)
        time.sleep(0.2)
    assert registry.moves == [], "the rollback was still running while /healthz answered"
    # Not behind the 5 s registry (the old code: 5.1 s); a loaded CI machine gets some slack.
    assert sorted(health)[2] < 0.5 and max(health) < 1.5, health

    deadline = time.monotonic() + 30
    while not slack.responses(url) and time.monotonic() < deadline:
        time.sleep(0.1)
    [reply] = slack.responses(url)
    assert reply["response_type"] == "ephemeral" and "Rollback done" in reply["text"], reply
    assert registry.moves == [(MODEL, "champion", "1")]
    [owner] = slack.messages("recsys-alerts")
    assert owner.updates >= 1, "the incident message was updated in place (chat.update)"
    assert "Roll back" not in json.dumps(owner.blocks), "the button is gone once the rollback is done"
    done = [(e.action, e.actor) for e in vigil.store.audit_entries() if e.action in ("rollback.requested",
                                                                                     "rollback.done")]
    assert done == [("rollback.requested", f"slack:{ALICE} (alice)"), ("rollback.done", f"slack:{ALICE} (alice)")]
