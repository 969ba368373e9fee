"""A receiver that hangs delays its own messages, not the others': a Slack that accepts
connections and never answers costs the pages queued behind it one timeout in all, not
one per Slack message."""
from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from tests.fakes.webhook_receiver import WebhookReceiver
from tests.helpers_vigil import T0, StubPrometheus, make_config, make_vigil, model_config

MODELS = 6
TIMEOUT_S = 1.0


@pytest.fixture
def hanging_slack() -> Iterator[tuple[str, list[socket.socket]]]:
    """Listens on 127.0.0.1, accepts, reads, never answers."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(50)
    conns: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                conns.append(srv.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{srv.getsockname()[1]}/api/", conns
    srv.close()
    for c in conns:
        c.close()


def test_pages_go_out_after_one_slack_timeout_not_one_per_slack_message(tmp_path, monkeypatch, hanging_slack):
    slack_url, conns = hanging_slack
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
    monkeypatch.setenv("HOOK_SECRET", "s" * 32)
    with WebhookReceiver("s" * 32) as hook:
        cfg = make_config(tmp_path, models=[model_config(f"m{i}") for i in range(MODELS)],
                          slack={"bot_token": "${SLACK_BOT_TOKEN}", "base_url": slack_url, "timeout_s": TIMEOUT_S,
                                 "max_rate_limit_retries": 0},
                          receivers=[{"name": "hook", "kind": "webhook", "url": hook.url("/alerts"),
                                      "secret_env": "HOOK_SECRET", "timeout_s": 5, "max_attempts": 1}])
        v = make_vigil(cfg, prometheus=StubPrometheus())  # no series at all: a no-data incident per model
        for i in range(MODELS):
            v.run_cycle(f"m{i}", T0)
        assert len(v.store.outbox.due(T0 + 1, 1000)) == 2 * MODELS  # a Slack message and a page each
        started = time.monotonic()
        v.deliver(T0 + 1)
        took = time.monotonic() - started
        assert len(hook.alerts) == MODELS, hook.alerts
        assert len(conns) == 1, "Slack was called again after it hung"
        assert took < 3 * TIMEOUT_S + 2, f"{took:.1f} s for one hanging Slack"  # one per message would be 6 s+
        counts = v.store.outbox_counts()
        assert counts.get("pending", 0) + counts.get("sending", 0) == MODELS, counts  # Slack's wait, none lost
