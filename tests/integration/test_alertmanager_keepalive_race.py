"""Two replicas, one Alertmanager receiver. Replica B's keep-alive reads the refs (the incident
firing) and its push is retried after a 503; meanwhile replica A delivers the incident's
resolve. B's retry pushed the stale firing alert with endsAt 4 x resend_every ahead:
Alertmanager showed the resolved incident firing again, and notified it, for 4 minutes."""
from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from alerts.outbox import MessageKind
from alerts.receivers.alertmanager import AlertmanagerReceiver
from alerts.receivers.http import HttpCaller, RetrySettings
from alerts.receivers.mapping import iso
from monitor.cycle.deliver import OutboxSender
from monitor.metrics import VigilMetrics
from monitor.store.repository import Store
from tests.helpers_receivers import T, incident_record

pytestmark = pytest.mark.integration
KEY = "vigil-incident-1"


class Alertmanager:
    """What Alertmanager holds: each alert's last endsAt (a later push replaces it)."""

    def __init__(self) -> None:
        self.ends: dict[str, str] = {}
        self.lock = threading.Lock()

    def take(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            for alert in json.loads(request.content):
                self.ends[alert["labels"]["vigil_incident"]] = alert["endsAt"]
        return httpx.Response(200)


def _receiver(handler: Callable[[httpx.Request], httpx.Response], now: list[float]) -> AlertmanagerReceiver:
    http = HttpCaller("am", timeout_s=5, retry=RetrySettings(max_attempts=3, backoff_s=0.0, max_wait_s=1),
                      transport=httpx.MockTransport(handler), clock=lambda: now[0], sleep=lambda s: None)
    return AlertmanagerReceiver("am", "http://am", http, resend_every_s=60, clock=lambda: now[0])


Handler = Callable[[httpx.Request], httpx.Response]


def _two_replicas(tmp_path: Path, a_handler: Handler, b_handler: Handler,
                  now: list[float]) -> tuple[Store, OutboxSender, OutboxSender]:
    store = Store(f"sqlite:///{tmp_path}/vigil.db")
    a = OutboxSender(store, {"am": _receiver(a_handler, now)}, VigilMetrics())
    b = OutboxSender(store, {"am": _receiver(b_handler, now)}, VigilMetrics())
    with store.tx() as s:
        store.enqueue(s, "am", MessageKind.INCIDENT, "incident:1", incident_record(), T)
    a.deliver_due(T)  # A delivers the page
    return store, a, b


def _resolve(store: Store) -> None:
    with store.tx() as s:
        store.enqueue(s, "am", MessageKind.INCIDENT, "incident:1", incident_record(status="resolved"), T + 600)


def test_a_resolve_delivered_during_a_retried_keep_alive_stays_resolved(tmp_path: Path):
    am, now, calls = Alertmanager(), [T], []

    def b_handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) == 1:  # B's keep-alive meets a 503; A resolves meanwhile
            _resolve(store)
            a.deliver_due(T + 600)
            return httpx.Response(503)
        return am.take(request)

    store, a, b = _two_replicas(tmp_path, am.take, b_handler, now)
    now[0] = T + 600
    b.deliver_due(T + 600)  # nothing to deliver: B's keep-alive round
    assert len(calls) >= 2, "the keep-alive was retried"
    assert am.ends[KEY] == iso(T + 600), "Alertmanager shows the resolved incident firing again"


def test_a_resolve_in_flight_during_a_keep_alive_is_pushed_again_once_delivered(tmp_path: Path):
    """A's push reached Alertmanager first, its outcome not recorded yet when B read the refs again."""
    am, now = Alertmanager(), [T]
    a_pushed, release, b_calls, slow = threading.Event(), threading.Event(), [], []

    def a_handler(request: httpx.Request) -> httpx.Response:
        am.take(request)
        if slow:  # the resolve: taken, its answer held back until B's keep-alive is over
            a_pushed.set()
            assert release.wait(20)
        return httpx.Response(200)

    def b_handler(request: httpx.Request) -> httpx.Response:
        b_calls.append(1)
        if len(b_calls) == 1:
            _resolve(store)
            slow.append(1)
            threading.Thread(target=a.deliver_due, args=(T + 600,), daemon=True).start()
            assert a_pushed.wait(20)
        return am.take(request)  # B's stale push lands after A's resolve

    store, a, b = _two_replicas(tmp_path, a_handler, b_handler, now)
    now[0] = T + 600
    b.deliver_due(T + 600)
    release.set()
    for _ in range(200):  # A records its outcome
        if not store.outbox.counts().get("sending"):
            break
        threading.Event().wait(0.05)
    now[0] = T + 602
    b.deliver_due(T + 602)  # B's next sender round, not a keep-alive round
    assert am.ends[KEY] == iso(T + 600), "Alertmanager shows the resolved incident firing again"
