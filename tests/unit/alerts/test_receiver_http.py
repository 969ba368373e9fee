"""The receivers' HTTP layer (alerts/receivers/http.py) against answers a real backend or
the proxy in front of it can give: what the outbox is told to do with the page."""
from __future__ import annotations

import email.utils
import time
from typing import Any

import httpx
import pytest

from alerts.outbox import DeliveryStatus, MessageKind, OutboxMessage
from alerts.receivers.http import HttpCaller, RetrySettings, SecretSource
from alerts.receivers.pagerduty import PagerDutyReceiver

PD_KEY = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
RECORD: dict[str, Any] = {
    "dedup_key": "vigil-incident-1", "incident_id": 1, "model": "recommender", "severity": "critical",
    "status": "open", "title": "CTR down", "opened_at": 1_795_259_340.0, "updated_at": 1_795_259_400.0,
    "resolved_at": None, "acknowledged_by": None, "top_cause": None, "findings": [], "finding_count": 0,
    "links": {},
}


def _pd(handler: Any, monkeypatch: pytest.MonkeyPatch, **retry: Any) -> PagerDutyReceiver:
    monkeypatch.setenv("PD_KEY_T", PD_KEY)
    http = HttpCaller("PagerDuty (pd)", timeout_s=2.0, retry=RetrySettings(**{"max_attempts": 2, "backoff_s": 0.0,
                                                                               "max_wait_s": 0.0, **retry}),
                      sleep=lambda s: None, transport=httpx.MockTransport(handler))
    return PagerDutyReceiver("pd", SecretSource("routing key", env="PD_KEY_T"), http, url="http://pd.test")


def _message() -> OutboxMessage:
    return OutboxMessage(id=7, notifier="pd", kind=MessageKind.INCIDENT, key="incident:1", payload=RECORD)


@pytest.mark.parametrize("value", [
    "86400",
    "9" * 400,  # float() of it is inf: the page would never be due again
    email.utils.formatdate(time.time() + 86400, usegmt=True),
])
def test_a_day_long_retry_after_holds_a_page_minutes_not_a_day(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def throttled(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, json={"status": "throttle event"}, headers={"Retry-After": value})

    result = _pd(throttled, monkeypatch).deliver(_message())
    assert result.status == DeliveryStatus.RETRY
    assert result.retry_after is not None and 0 < result.retry_after <= 600, \
        "a proxy's day-long Retry-After must not keep a page out of PagerDuty for a day"


@pytest.mark.parametrize("status", [408, 425])
def test_a_request_timeout_from_a_proxy_delays_the_page_not_drops_it(status: int,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # RFC 9110: 408 (the server, often a load balancer, timed out waiting for the request)
    # and 425 (Too Early) invite a repeat; failing the message would lose the page.
    calls: list[int] = []

    def flaky(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) == 1:
            return httpx.Response(status, text="request timed out")
        return httpx.Response(202, json={"status": "success", "message": "Event processed"})

    result = _pd(flaky, monkeypatch).deliver(_message())
    assert result.status == DeliveryStatus.DELIVERED, result.error
    assert len(calls) == 2


def test_a_malformed_event_still_fails_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def invalid(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(400, json={"status": "invalid event", "message": "Event object is invalid",
                                         "errors": ["'payload.summary' is missing or blank"]})

    result = _pd(invalid, monkeypatch).deliver(_message())
    assert result.status == DeliveryStatus.FAILED and "payload.summary" in result.error
    assert len(calls) == 1


@pytest.mark.parametrize("key", ["og-key-1\nog-key-2-SECRETPART", "og-key\x00SECRETPART", "og\tkey\x7fSECRETPART"])
def test_a_key_with_a_line_break_is_named_never_shown(key: str, tmp_path: Any,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    # A key file holding two lines (or a stray control character) is not a valid header
    # value; httpx's error quoted the whole header, key included, into the outbox's
    # last_error and the logs. The message must wait for a fixed key, saying which one.
    from alerts.receivers.opsgenie import OpsgenieReceiver
    from tests.fakes.opsgenie_server import FakeOpsgenie

    path = tmp_path / "og-key"
    path.write_text(key)
    with FakeOpsgenie("og-key-1") as server:
        http = HttpCaller("Opsgenie (og)", timeout_s=2.0, retry=RetrySettings(max_attempts=2, backoff_s=0.0),
                          sleep=lambda s: None)
        og = OpsgenieReceiver("og", SecretSource("receivers[og]: the Opsgenie API key", file=path), http,
                              url=server.url)
        with caplog.at_level("DEBUG"):
            result = og.deliver(_message())
        assert server.alerts() == []
    assert result.status == DeliveryStatus.RETRY, "the page waits for a fixed key"
    assert "SECRETPART" not in result.error and "SECRETPART" not in caplog.text
    assert str(path) in result.error and "control character" in result.error


def test_a_receiver_dripping_its_answer_is_cut_at_timeout_s_and_retried_as_uncertain(monkeypatch):
    """timeout_s bounds the whole answer, not each read of it: a backend (or a wedged proxy)
    sending its answer a byte at a time held the outbox sender 10 s on a 1 s timeout."""
    from tests.fakes.dripping import dripping_receiver

    monkeypatch.setenv("PD_KEY_T", PD_KEY)
    with dripping_receiver(byte_every_s=0.25, length=40) as url:
        http = HttpCaller("PagerDuty (pd)", timeout_s=1.0, retry=RetrySettings(max_attempts=1, backoff_s=0.0,
                                                                               max_wait_s=0.0))
        pd = PagerDutyReceiver("pd", SecretSource("routing key", env="PD_KEY_T"), http, url=url)
        started = time.monotonic()
        result = pd.deliver(_message())
        took = time.monotonic() - started
    assert took < 2.5, took
    assert result.status == DeliveryStatus.RETRY and "within 1 s" in result.error and result.uncertain, result
