"""Only the champion alias checked the replica's lease and the intent right before it wrote.
KServe and Argo Rollouts (through the Kubernetes client they share), the webhook and a canary's
challenger alias wrote without it: a replica paused past its lease after reading its layer (its
new owner may have finished the rollback since, and a person moved the layer on) still patched
the InferenceService, aborted and undid the Rollout, posted the webhook or removed the challenger
alias when it resumed. Each transport now checks them right before each attempt to write."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.orm import Session

from alerts.rollback import ActionStatus
from monitor.cycle.rollback_ask import CANARY_PULL
from monitor.cycle.rollback_intents import RollbackAsk
from monitor.executors.argo import ArgoRolloutsExecutor
from monitor.executors.base import Executor
from monitor.executors.build import alias_executor, challenger_executor
from monitor.executors.config import ArgoRolloutsExecutorConfig, KServeExecutorConfig, WebhookExecutorConfig
from monitor.executors.kserve import KServeExecutor
from monitor.executors.kube import KubeClient, ObjectRef, api_client_at
from monitor.executors.webhook import WebhookExecutor
from monitor.replicas import LeaseLost
from monitor.vigil import Vigil
from tests.fakes.kube_api import FakeKubeApi
from tests.fakes.kube_objects import NS, inference_service, replica_set, rollout
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.helpers_vigil import MODEL, T0, MemoryRegistry, make_config, make_vigil, serving_registry

SECRET = "whsec-fence-1"


class LostOnCue:
    """A fence whose lease is lost once `lost` is set (the replica paused past it, taken over)."""

    lost = False

    def check(self, session: Session, model: str, token: int) -> None:
        if self.lost:
            raise LeaseLost(model, token, "replica-b", current_token=token + 1)


class Stall:
    """Once armed (when the intent is recorded), the next read of the serving layer is the
    replica's last act before it stalls past its lease (or before `then`)."""

    def __init__(self, fence: LostOnCue, then: Callable[[], None] | None = None) -> None:
        self.fence, self.armed, self.then = fence, False, then

    def arm(self, _s: Session, _intent: object) -> None:
        self.armed = True

    def after_read(self) -> None:
        if self.armed:
            self.armed = False
            if self.then is None:
                self.fence.lost = True
            else:
                self.then()


class StallingKube(KubeClient):
    """The Kubernetes client, its replica stalling right after a read once `stall` is armed."""

    stall: Stall | None = None

    def get(self, ref: ObjectRef) -> dict[str, Any]:
        obj = super().get(ref)
        if self.stall is not None:
            self.stall.after_read()
        return obj


@pytest.fixture
def kube() -> Iterator[FakeKubeApi]:
    with FakeKubeApi() as server:
        yield server


def vigil_with(tmp_path: Path, serving: Callable[[MemoryRegistry], Executor]) -> tuple[Vigil, MemoryRegistry]:
    reg = serving_registry(version="2")
    vigil = make_vigil(make_config(tmp_path), registry=reg)
    vigil._layers[MODEL] = [alias_executor(reg, "champion"), serving(reg)]
    return vigil, reg


def roll_back_and_stall(vigil: Vigil, fence: LostOnCue, stall: Stall, *, kind: str = "rollback",
                        to: str = "1", from_version: str | None = None) -> None:
    ask = RollbackAsk(vigil.config.model(MODEL), to, "ctr down since v2", "api:alice", None, T0, kind=kind,
                      from_version=from_version, on_recorded=stall.arm)
    with pytest.raises(LeaseLost), vigil.store.fenced(fence, MODEL, 7):
        vigil.operator.rollback(ask)


def assert_pending_not_done(vigil: Vigil) -> None:
    """The replica that resumes reports nothing: the intent is its new owner's to finish."""
    [action] = vigil.store.actions(model=MODEL)
    assert action.status == ActionStatus.PENDING, action.detail
    assert not any(e.action.endswith(".done") for e in vigil.store.audit_entries())


def test_kserve_is_not_patched_by_a_replica_that_lost_its_lease_after_reading_it(tmp_path: Path,
                                                                                  kube: FakeKubeApi) -> None:
    kube.put_object(inference_service(uri="s3://models/recommender/2"))
    fence = LostOnCue()
    stall, client = Stall(fence), StallingKube(api_client_at(kube.url), timeout_s=2.0, backoff_s=0.01)
    cfg = KServeExecutorConfig(kind="kserve", namespace=NS, name="recommender",
                               storage_uri_template="s3://models/{registry}/{version}")
    vigil, reg = vigil_with(tmp_path, lambda _reg: KServeExecutor(client, cfg))
    client.stall = stall
    roll_back_and_stall(vigil, fence, stall)
    assert reg.aliases[(MODEL, "champion")] == "1"  # the alias moved while the lease was held
    assert kube.writes() == [], "the InferenceService was patched after the lease was lost"
    assert_pending_not_done(vigil)


def test_argo_is_not_aborted_by_a_replica_that_lost_its_lease_after_reading_it(tmp_path: Path,
                                                                                kube: FakeKubeApi) -> None:
    kube.put_object(rollout(version="2"))
    kube.put_object(replica_set("1", 1, "aaa111"))
    kube.put_object(replica_set("2", 2, "bbb222"))
    fence = LostOnCue()
    stall, client = Stall(fence), StallingKube(api_client_at(kube.url), timeout_s=2.0, backoff_s=0.01)
    cfg = ArgoRolloutsExecutorConfig(kind="argo_rollouts", namespace=NS, name="recommender")
    vigil, _ = vigil_with(tmp_path, lambda _reg: ArgoRolloutsExecutor(client, cfg))
    client.stall = stall
    roll_back_and_stall(vigil, fence, stall)
    assert kube.writes() == [], "the Rollout was aborted or undone after the lease was lost"
    assert_pending_not_done(vigil)


class StallingWebhook(WebhookExecutor):
    """The webhook executor, `stall` told after each read of the verify URL."""

    stall: Stall | None = None

    def _request(self, method: str, url: str, body: bytes, headers: dict[str, str],
                 timeout: float) -> httpx.Response:
        answer = super()._request(method, url, body, headers, timeout)
        if method == "GET" and self.stall is not None:
            self.stall.after_read()
        return answer


def webhook_config(hook: WebhookReceiver, monkeypatch: pytest.MonkeyPatch) -> WebhookExecutorConfig:
    monkeypatch.setenv("VIGIL_TEST_FENCE_SECRET", SECRET)
    return WebhookExecutorConfig(kind="webhook", url=hook.url("/rollback"), verify_url=hook.url("/serving"),
                                 secret_env="VIGIL_TEST_FENCE_SECRET", timeout_s=2, max_attempts=3, backoff_s=0.01)


def test_the_webhook_is_not_posted_by_a_replica_that_lost_its_lease_after_reading_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fence = LostOnCue()
    stall = Stall(fence)
    with WebhookReceiver(SECRET, serving="2") as hook:
        executor = StallingWebhook(webhook_config(hook, monkeypatch))
        vigil, _ = vigil_with(tmp_path, lambda _reg: executor)
        executor.stall = stall
        roll_back_and_stall(vigil, fence, stall)
        assert "POST" not in [d.method for d in hook.deliveries], "the webhook was posted after the lease was lost"
    assert_pending_not_done(vigil)


def test_a_webhook_retry_is_not_sent_once_the_lease_is_lost_during_the_wait(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each attempt is a write: a 503, a wait, the lease lost meanwhile: no second attempt."""
    fence = LostOnCue()
    seen: list[str] = []

    def stalls_in_the_wait(_s: float) -> None:
        seen.append("waited")
        fence.lost = True

    with WebhookReceiver(SECRET, serving="2") as hook:
        stall = Stall(fence, then=lambda: hook.fail(503, count=1))  # the POST, after the drive's read
        executor = StallingWebhook(webhook_config(hook, monkeypatch), sleep=stalls_in_the_wait)
        vigil, _ = vigil_with(tmp_path, lambda _reg: executor)
        executor.stall = stall
        roll_back_and_stall(vigil, fence, stall)
        posts = [d for d in hook.deliveries if d.method == "POST"]
        assert seen == ["waited"] and [d.status for d in posts] == [503], posts
        assert hook.actions == []
    assert_pending_not_done(vigil)


def test_the_challenger_alias_is_not_removed_by_a_replica_that_lost_its_lease_after_reading_it(
        tmp_path: Path) -> None:
    fence = LostOnCue()
    stall = Stall(fence)

    class StallingRegistry(MemoryRegistry):
        def alias_version(self, name: str, alias: str) -> str | None:
            version = super().alias_version(name, alias)
            if alias == "challenger":
                stall.after_read()
            return version

    base = serving_registry(version="2", versions=("1", "2", "3"))
    reg = StallingRegistry(aliases={**base.aliases, (MODEL, "challenger"): "3"}, versions=dict(base.versions))
    vigil = make_vigil(make_config(tmp_path), registry=reg)
    vigil.rollbacks.pull_layers = lambda m: [challenger_executor(reg, "challenger", "champion")]
    roll_back_and_stall(vigil, fence, stall, kind=CANARY_PULL, to="2", from_version="3")
    assert reg.aliases[(MODEL, "challenger")] == "3" and reg.moves == [], "the challenger alias was removed"
    [action] = vigil.store.actions(model=MODEL)
    assert action.status == ActionStatus.PENDING, action.detail
