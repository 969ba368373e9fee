"""webhook against the local receiver: signed, delivered at most once per key even when
retried, bounded retries, never on a plain 4xx, then a verification call."""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from monitor.executors.base import ExecutorError, RollbackStep
from monitor.executors.config import WebhookExecutorConfig
from monitor.executors.webhook import WebhookExecutor, retry_after_s
from tests.fakes.dripping import dripping_receiver
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.fixtures_mlflow import closed_port_url

SECRET = "whsec-test-5e1f9a"
ENV = "VIGIL_TEST_WEBHOOK_SECRET"
STEP = RollbackStep(model="recommender", registry_name="recsys-ranker", from_version="2", to_version="1",
                    key="rollback:incident:7:v1", incident_id=7, requested_at=1_795_259_000.0)


@pytest.fixture
def hook() -> Iterator[WebhookReceiver]:
    with WebhookReceiver(SECRET, serving="2") as receiver:
        yield receiver


@pytest.fixture(autouse=True)
def secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, SECRET)


class Sleeps(list[float]):
    def __call__(self, s: float) -> None:
        self.append(s)


def executor(hook: WebhookReceiver, sleeps: Sleeps | None = None, **over: Any) -> WebhookExecutor:
    cfg = WebhookExecutorConfig(**{"kind": "webhook", "url": hook.url("/rollback"), "verify_url": hook.url("/serving"),
                                   "secret_env": ENV, "timeout_s": 2.0, "max_attempts": 4, "backoff_s": 0.01, **over})
    return WebhookExecutor(cfg, sleep=sleeps if sleeps is not None else Sleeps())


def test_a_signed_request_moves_the_layer_and_verifies(hook: WebhookReceiver) -> None:
    ex = executor(hook)
    assert ex.current(STEP) == "2"
    ex.apply(STEP)
    [action] = hook.actions
    assert {k: action[k] for k in ("model", "registry_name", "from_version", "to_version", "incident_id",
                                   "idempotency_key", "requested_at")} == {
        "model": "recommender", "registry_name": "recsys-ranker", "from_version": "2", "to_version": "1",
        "incident_id": 7, "idempotency_key": "rollback:incident:7:v1", "requested_at": "2026-11-21T11:03:20Z"}
    post = next(d for d in hook.deliveries if d.method == "POST")
    assert post.headers["idempotency-key"] == STEP.key
    ts = post.headers["x-vigil-timestamp"]
    want = hmac.new(SECRET.encode(), f"{ts}.{post.body.decode()}".encode(), hashlib.sha256).hexdigest()
    assert post.headers["x-vigil-signature"] == f"v1={want}"
    v = ex.verify(STEP)
    assert (v.ok, v.serving) == (True, "1")


def test_apply_twice_acts_once(hook: WebhookReceiver) -> None:
    ex = executor(hook)
    ex.apply(STEP)
    ex.apply(STEP)
    assert len(hook.actions) == 1
    posts = [d for d in hook.deliveries if d.method == "POST"]
    assert [p.replayed for p in posts] == [False, True]
    assert posts[0].body == posts[1].body  # the same request, byte for byte


def test_503_and_429_are_retried_honouring_retry_after(hook: WebhookReceiver) -> None:
    sleeps = Sleeps()
    hook.fail(503, count=1)
    hook.fail(429, count=1, retry_after="2")
    executor(hook, sleeps).apply(STEP)
    assert len(hook.actions) == 1
    assert sleeps == [0.01, 2.0]  # backoff, then the receiver's Retry-After


@pytest.mark.parametrize("status", [408, 425])
def test_a_proxys_408_or_425_is_retried_not_a_refusal(hook: WebhookReceiver, status: int) -> None:
    """408 (a load balancer gave up waiting for the request) and 425 (Too Early) invite a
    repeat (RFC 9110/8470), as the receivers' calls treat them: the rollback must not fail
    for good (and leave the bad version serving) on one."""
    sleeps = Sleeps()
    hook.fail(status, count=1)
    executor(hook, sleeps).apply(STEP)
    assert len(hook.actions) == 1 and sleeps == [0.01]


def test_retry_after_is_capped(hook: WebhookReceiver) -> None:
    sleeps = Sleeps()
    hook.fail(429, count=1, retry_after="3600")
    executor(hook, sleeps, max_wait_s=5).apply(STEP)
    assert sleeps == [5.0]


def test_a_lost_response_is_retried_and_the_receiver_acts_once(hook: WebhookReceiver) -> None:
    hook.slow_after_act(1.0)  # acts, then answers after the caller's timeout
    executor(hook, timeout_s=0.3).apply(STEP)
    assert len(hook.actions) == 1
    posts = [d for d in hook.deliveries if d.method == "POST"]
    assert [p.replayed for p in posts] == [False, True]


def test_gives_up_after_max_attempts_with_a_retryable_error(hook: WebhookReceiver) -> None:
    hook.fail(503, count=10)
    with pytest.raises(ExecutorError) as e:
        executor(hook, max_attempts=3).apply(STEP)
    assert (e.value.retryable, e.value.reason) == (True, "unavailable")
    assert "after 3 attempt(s)" in e.value.detail and "503" in e.value.detail
    assert len(hook.deliveries) == 3 and hook.actions == []


def test_an_unreachable_receiver_is_retryable() -> None:
    url = closed_port_url()
    cfg = WebhookExecutorConfig(kind="webhook", url=url + "/rollback", verify_url=url + "/serving", secret_env=ENV,
                                max_attempts=2, backoff_s=0)
    with pytest.raises(ExecutorError) as e:
        WebhookExecutor(cfg, sleep=Sleeps()).apply(STEP)
    assert e.value.retryable and "ConnectError" in e.value.detail


def test_a_receiver_dripping_its_answer_is_cut_at_timeout_s() -> None:
    """timeout_s bounds the whole answer, not each read: the README promises a rollback's
    calls to its layers end within their time, and a cycle must not wait minutes on one."""
    with dripping_receiver(byte_every_s=0.25, length=40) as url:
        cfg = WebhookExecutorConfig(kind="webhook", url=url + "/rollback", verify_url=url + "/serving",
                                    secret_env=ENV, timeout_s=1.0, max_attempts=1)
        started = time.monotonic()
        with pytest.raises(ExecutorError) as e:
            WebhookExecutor(cfg, sleep=Sleeps()).current(STEP)
        took = time.monotonic() - started
    assert took < 2.5, took
    assert (e.value.retryable, e.value.reason) == (True, "unavailable") and "1 s" in e.value.detail


def test_other_4xx_is_not_retried(hook: WebhookReceiver) -> None:
    hook.fail(400, count=5)
    with pytest.raises(ExecutorError) as e:
        executor(hook).apply(STEP)
    assert (e.value.retryable, e.value.reason) == (False, "rejected")
    assert len(hook.deliveries) == 1


def test_a_wrong_secret_is_refused_and_never_logged(hook: WebhookReceiver, monkeypatch: pytest.MonkeyPatch,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv(ENV, "not-the-secret-8c2d")
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ExecutorError) as e:
        executor(hook).apply(STEP)
    assert (e.value.retryable, e.value.reason) == (False, "unauthorized")
    assert "same secret" in e.value.detail
    assert hook.actions == [] and len(hook.deliveries) == 1
    assert "not-the-secret-8c2d" not in caplog.text + str(e.value)


def test_a_stale_timestamp_is_refused(hook: WebhookReceiver) -> None:
    ex = executor(hook)
    ex.clock = lambda: hook.clock() - 600  # Vigil's clock 10 minutes behind the receiver's
    with pytest.raises(ExecutorError) as e:
        ex.apply(STEP)
    assert e.value.reason == "unauthorized"
    assert json.loads(hook.deliveries[0].body)["to_version"] == "1" and hook.actions == []


def test_verification_showing_another_version_is_not_ok(hook: WebhookReceiver) -> None:
    ex = executor(hook)
    ex.apply(STEP)
    hook.report("2")  # the layer accepted the call but still serves v2
    v = ex.verify(STEP)
    assert (v.ok, v.serving) == (False, "2")
    assert "expected v1" in v.detail


def test_secret_from_a_file(hook: WebhookReceiver, tmp_path: Path) -> None:
    (tmp_path / "secret").write_text(SECRET + "\n")
    cfg = WebhookExecutorConfig(kind="webhook", url=hook.url("/rollback"), verify_url=hook.url("/serving"),
                                secret_file="secret")
    WebhookExecutor(cfg, base_dir=tmp_path).apply(STEP)
    assert len(hook.actions) == 1


def test_a_missing_secret_names_where_it_was_looked_for(hook: WebhookReceiver, monkeypatch: pytest.MonkeyPatch,
                                                        tmp_path: Path) -> None:
    monkeypatch.delenv(ENV)
    with pytest.raises(ExecutorError) as e:
        executor(hook).apply(STEP)
    assert (e.value.retryable, e.value.reason) == (False, "config") and ENV in e.value.detail
    cfg = WebhookExecutorConfig(kind="webhook", url=hook.url("/rollback"), verify_url=hook.url("/serving"),
                                secret_file="nope")
    with pytest.raises(ExecutorError) as e:
        WebhookExecutor(cfg, base_dir=tmp_path).apply(STEP)
    assert str(tmp_path / "nope") in e.value.detail
    assert hook.deliveries == []


def test_retry_after_parsing() -> None:
    assert retry_after_s("7", now=0) == 7.0
    assert retry_after_s("Fri, 20 Nov 2026 09:00:30 GMT", now=1_795_165_200.0) == pytest.approx(30.0)
    assert retry_after_s("soon", now=0) is None and retry_after_s(None, now=0) is None


@pytest.mark.parametrize("url", ["http://deployer.internal/rollback", "http://[::1/rollback"])
def test_an_unreadable_answer_or_a_bad_url_is_an_executor_error(url: str) -> None:
    """A proxy that sends a broken gzip body (httpx.DecodingError), or a URL httpx cannot
    parse: an ExecutorError the rollback records, not an exception that escapes it and
    leaves the rollback in flight for ever."""
    import httpx

    def broken_gzip(_: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
                              content=b"not gzip at all")

    cfg = WebhookExecutorConfig(kind="webhook", url=url, verify_url=url, secret_env=ENV, max_attempts=2,
                                backoff_s=0.0)
    ex = WebhookExecutor(cfg, sleep=Sleeps(), transport=httpx.MockTransport(broken_gzip))
    for call in (lambda: ex.current(STEP), lambda: ex.apply(STEP)):
        with pytest.raises(ExecutorError) as e:
            call()
        assert e.value.reason == "rejected" and url in e.value.detail


def test_a_secret_from_the_environment_loses_its_trailing_newline(hook: WebhookReceiver,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A Kubernetes secret made with --from-file keeps the newline; the env secret was used
    as is (the file one was stripped), so every rollback's webhook was refused as unsigned."""
    monkeypatch.setenv(ENV, SECRET + "\n")
    executor(hook).apply(STEP)
    assert len(hook.actions) == 1
