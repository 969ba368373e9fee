"""A sender paused past its claim while a receiver waited to retry (a PagerDuty 503, then the
back-off: a stopped VM, SIGSTOP) sent its retry when it resumed: the page's trigger, after the
replica that took the row over had sent it and then the incident's resolve. PagerDuty opened a
new alert for the resolved incident, and nothing ever resolved it. A receiver now starts no call
that cannot end within the sender's claim: the message is left to the sender that took it over."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from alerts.outbox import MessageKind
from alerts.receivers.http import HttpCaller, RetrySettings, SecretSource
from alerts.receivers.pagerduty import PagerDutyReceiver
from monitor.cycle.deliver import OutboxSender
from monitor.metrics import VigilMetrics
from monitor.store.repository import Store
from tests.fakes.pagerduty_server import FakePagerDuty
from tests.helpers_receivers import PD_KEY, incident_record
from tests.helpers_replicas import sqlite_or_postgres_url

CLAIM_S = 2.0
PAUSE_S = CLAIM_S + 2.0  # the paused sender's back-off before its retry, past its claim


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return sqlite_or_postgres_url(request.param, tmp_path, lambda: request.getfixturevalue("postgres_url"))


def pagerduty(pd: FakePagerDuty, sleep: object) -> PagerDutyReceiver:
    http = HttpCaller("pagerduty", timeout_s=0.5, retry=RetrySettings(max_attempts=3, backoff_s=0.1, max_wait_s=1.0),
                      sleep=sleep)  # type: ignore[arg-type]
    return PagerDutyReceiver("pd", SecretSource("routing key", env="PD_KEY_PAUSED"), http, url=pd.url)


def test_a_sender_paused_before_a_receivers_retry_does_not_page_again_after_the_resolve(
        url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PD_KEY_PAUSED", PD_KEY)
    stores = [Store(url), Store(url)]
    waiting = threading.Event()

    def paused_backoff(_: float) -> None:  # the process is stopped in its back-off
        waiting.set()
        time.sleep(PAUSE_S)

    with FakePagerDuty() as pd:
        with stores[0].tx() as s:
            stores[0].outbox.enqueue(s, "pd", MessageKind.INCIDENT, "incident:1", incident_record(), time.time())
        paused = OutboxSender(stores[0], {"pd": pagerduty(pd, paused_backoff)}, VigilMetrics(), claim_s=CLAIM_S)
        other = OutboxSender(stores[1], {"pd": pagerduty(pd, time.sleep)}, VigilMetrics(), claim_s=CLAIM_S)
        pd.force(503, count=1)
        thread = threading.Thread(target=paused.deliver_due, args=(time.time(),), kwargs={"database_clock": True})
        thread.start()
        assert waiting.wait(10), "the first attempt was answered 503"
        time.sleep(CLAIM_S + 0.3)  # its claim has lapsed
        assert other.deliver_due(time.time(), database_clock=True) == 1, "the other replica took the page over"
        with stores[1].tx() as s:
            stores[1].outbox.enqueue(s, "pd", MessageKind.INCIDENT, "incident:1", incident_record(status="resolved"),
                                     time.time())
        assert other.deliver_due(time.time(), database_clock=True) == 1, "and sent the resolve"
        thread.join(timeout=30)
        alerts = [(a.status, [e.get("event_action") for e in a.log]) for a in pd.alerts()]
    assert alerts == [("resolved", ["trigger", "resolve"])], f"PagerDuty's alerts: {alerts}"
    assert stores[1].outbox_counts() == {"delivered": 2}
    for st in stores:
        st.close()
