"""A cancel (`POST /v1/models/{name}/rollback/cancel`, `vigil rollback cancel`) that found the
alias at the rollback's target drove the rollback itself, in the API's thread: on a replica that
may not hold the model's lease, outside the fence its cycles write under, and at the same time as
the lease holder's cycle driving the same intent. It patched the serving layer (KServe here).
Now it says what it saw and leaves the rollback to the replica that holds the lease."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from alerts.rollback import ActionStatus
from monitor.cycle.rollback_cancel import MOVING, cancel
from monitor.cycle.rollback_intents import RollbackAsk
from monitor.executors.build import alias_executor
from monitor.executors.config import KServeExecutorConfig
from monitor.executors.kserve import KServeExecutor
from monitor.executors.kube import KubeClient, api_client_at
from monitor.replicas import LeaseLost
from monitor.vigil import Vigil
from tests.fakes.kube_api import FakeKubeApi
from tests.fakes.kube_objects import NS, inference_service
from tests.helpers_vigil import MODEL, T0, MemoryRegistry, make_config, make_vigil, serving_registry


@pytest.fixture
def kube() -> Iterator[FakeKubeApi]:
    with FakeKubeApi() as server:
        yield server


class HeldBy:
    """The model's lease as the store has it: held by `holder` under token 7."""

    def __init__(self, holder: str, me: str) -> None:
        self.holder, self.me, self.checked = holder, me, 0

    def check(self, session: Session, model: str, token: int) -> None:
        self.checked += 1
        if self.holder != self.me or token != 7:
            raise LeaseLost(model, token, self.holder, current_token=7)


def kserve_vigil(tmp_path: Path, kube: FakeKubeApi, fence: HeldBy | None) -> tuple[Vigil, MemoryRegistry]:
    """v2 serving through the champion alias and a KServe InferenceService; `fence`: a replica
    among others (None: one daemon alone, no fence)."""
    kube.put_object(inference_service(uri="s3://models/recommender/2"))
    reg = serving_registry(version="2")
    vigil = make_vigil(make_config(tmp_path), registry=reg)
    cfg = KServeExecutorConfig(kind="kserve", namespace=NS, name="recommender",
                               storage_uri_template="s3://models/{registry}/{version}")
    client = KubeClient(api_client_at(kube.url), timeout_s=2.0, backoff_s=0.01)
    vigil._layers[MODEL] = [alias_executor(reg, "champion"), KServeExecutor(client, cfg)]
    if fence is None:
        return vigil, reg
    vigil.fence = fence  # a replica among others on one PostgreSQL (monitor/startup.take_ownership)
    vigil.lease_token = lambda model: 7 if fence.holder == fence.me else None
    return vigil, reg


def test_a_cancel_that_finds_the_alias_at_the_target_writes_no_serving_layer(tmp_path: Path,
                                                                             kube: FakeKubeApi) -> None:
    vigil, reg = kserve_vigil(tmp_path, kube, None)
    m = vigil.config.model(MODEL)
    reg.fail_set_alias = "MLflow answered 503"  # the lease holder's attempt: its answer lost ...
    vigil.operator.rollback(RollbackAsk(m, "1", "ctr down since v2", "vigil", None, T0, max_attempts=10))
    reg.fail_set_alias, reg.aliases[(MODEL, "champion")] = None, "1"  # ... its write landed
    got = cancel(vigil.rollbacks, m, "api:bob", "too late?", T0 + 30)  # the API's thread: no lease held
    assert kube.writes() == [], "the cancel patched the InferenceService outside the lease's fence"
    assert got.status == MOVING and "reads v1 already" in got.detail, got.detail
    assert "nothing cancelled" in got.detail and "nothing moved back" in got.detail
    [action] = vigil.store.actions(model=MODEL)
    assert action.status == ActionStatus.PENDING, action.detail  # the lease holder finishes and verifies it
    vigil.run_cycle(MODEL, T0 + 60)  # the lease holder's next cycle (here, the one daemon's) moves it
    [write] = kube.writes()
    assert write.method == "PATCH" and "kserve is set to v1" in vigil.store.actions(model=MODEL)[0].detail


def test_a_rollback_asked_of_a_replica_without_the_lease_is_left_to_the_lease_holder(
        tmp_path: Path, kube: FakeKubeApi) -> None:
    """The API's POST /rollback and a Slack button run `Operator.rollback` in the API's thread."""
    vigil, reg = kserve_vigil(tmp_path, kube, HeldBy("replica-b", "replica-a"))
    got = vigil.operator.rollback(RollbackAsk(vigil.config.model(MODEL), "1", "ctr down", "api:alice", None, T0))
    assert reg.moves == [] and kube.writes() == [], "a replica without the lease moved a layer"
    assert got.status == ActionStatus.PENDING and got.own, got.detail
    assert "does not hold" in got.detail and "next cycle" in got.detail, got.detail
    [action] = vigil.store.actions(model=MODEL)
    assert action.status == ActionStatus.PENDING


def test_the_lease_holder_drives_an_asked_rollback_under_its_fence(tmp_path: Path, kube: FakeKubeApi) -> None:
    fence = HeldBy("replica-a", "replica-a")
    vigil, reg = kserve_vigil(tmp_path, kube, fence)
    vigil.operator.rollback(RollbackAsk(vigil.config.model(MODEL), "1", "ctr down", "api:alice", None, T0))
    assert reg.moves == [(MODEL, "champion", "1")] and [w.method for w in kube.writes()] == ["PATCH"]
    assert fence.checked >= 4  # each transaction of the drive, and right before each write
