"""Rollback executors end to end: the real SQLite MLflow registry, and serving layers built
from a vigil.yaml against the local Kubernetes API and webhook receiver, driven the way
the durable-intent code drives them (read, compare, act, verify; again after a restart)."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from monitor.config import load_config
from monitor.executors.base import Executor, RollbackStep
from monitor.executors.build import alias_executor, build_serving_executor
from monitor.sources.registry import RegistrySource
from tests.fakes.kube_api import FakeKubeApi
from tests.fakes.kube_objects import ARGO, KSERVE, inference_service, replica_set, rollout
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.helpers_vigil import serving_registry

STEP = RollbackStep(model="recommender", registry_name="recommender", from_version="2", to_version="1",
                    key="rollback:incident:3", incident_id=3, requested_at=1_795_259_000.0)


def drive(ex: Executor, step: RollbackStep) -> str:
    """Compare-and-set as the caller does it: only move a layer that still serves from_version."""
    now = ex.current(step)
    if now == step.to_version:
        return "already"
    if now != step.from_version:
        return f"refused: serves {now}"
    ex.apply(step)
    v = ex.verify(step)
    return "done" if v.ok else f"unverified: {v.detail}"


class CountingRegistry:
    """The real registry, counting alias moves."""

    def __init__(self, inner: RegistrySource) -> None:
        self.inner, self.moves = inner, 0

    def alias_version(self, name: str, alias: str) -> str | None:
        return self.inner.alias_version(name, alias)

    def set_alias(self, name: str, alias: str, version: str) -> None:
        self.moves += 1
        self.inner.set_alias(name, alias, version)


def test_mlflow_alias_on_the_real_sqlite_registry(sqlite_registry: RegistrySource, model_name: str) -> None:
    sqlite_registry.create_model(model_name)
    for _ in range(2):
        sqlite_registry.create_version(model_name, f"vigil-test:/{model_name}")
    sqlite_registry.set_alias(model_name, "champion", "2")
    reg = CountingRegistry(sqlite_registry)
    step = RollbackStep(model_name, model_name, "2", "1", "rollback:sqlite")
    ex = alias_executor(reg, "champion")
    assert drive(ex, step) == "done"
    assert sqlite_registry.alias_version(model_name, "champion") == "1"
    assert drive(ex, step) == "already"
    ex.apply(step)  # a blind second apply is a no-op too
    assert reg.moves == 1


@pytest.fixture
def kube() -> Iterator[FakeKubeApi]:
    with FakeKubeApi() as server:
        yield server


def config(tmp_path: Path, serving: dict) -> Path:
    path = tmp_path / "vigil.yaml"
    path.write_text(yaml.safe_dump({"models": [{"name": "recommender", "serving": serving}]}))
    return path


def test_alias_then_kserve_from_config_survive_a_restart_and_a_later_deploy(kube: FakeKubeApi,
                                                                            tmp_path: Path) -> None:
    kube.put_object(inference_service(uri="models:/recommender/2"))
    cfg = load_config(config(tmp_path, {"kind": "kserve", "namespace": "ml", "name": "recommender",
                                        "storage_uri_template": "models:/{registry}/{version}",
                                        "api_url": kube.url}))
    m = cfg.models[0]
    reg = serving_registry("recommender", "2")
    layers = [alias_executor(reg, m.alias), build_serving_executor(m, reg, base_dir=cfg.base_dir)]
    assert [drive(ex, STEP) for ex in layers if ex] == ["done", "done"]
    predictor = kube.get_object(*KSERVE, "recommender")["spec"]["predictor"]
    assert predictor["model"]["storageUri"] == "models:/recommender/1"
    # a restart re-drives the same intent: nothing is written again
    assert [drive(ex, STEP) for ex in layers if ex] == ["already", "already"]
    assert len(kube.writes()) == 1
    # someone deploys v3 afterwards; the old intent, re-driven, must not undo it
    kube.edit(*KSERVE, "recommender", lambda o: o["spec"]["predictor"]["model"].update(
        storageUri="models:/recommender/3"))
    kserve = layers[1]
    assert kserve is not None and drive(kserve, STEP) == "refused: serves 3"
    assert len(kube.writes()) == 1


def test_argo_rollout_from_config(kube: FakeKubeApi, tmp_path: Path) -> None:
    kube.put_object(rollout(version="2"))
    kube.put_object(replica_set("1", 1, "aaa111"))
    kube.put_object(replica_set("2", 2, "bbb222"))
    m = load_config(config(tmp_path, {"kind": "argo_rollouts", "namespace": "ml", "name": "recommender",
                                      "api_url": kube.url})).models[0]
    ex = build_serving_executor(m, serving_registry())
    assert ex is not None and drive(ex, STEP) == "done"
    obj = kube.get_object(*ARGO, "recommender")
    assert obj["status"]["abort"] is True
    assert obj["spec"]["template"]["metadata"]["labels"]["model-version"] == "1"
    assert drive(ex, STEP) == "already" and len(kube.writes()) == 2


def test_webhook_from_config_with_a_secret_file(tmp_path: Path) -> None:
    (tmp_path / "hook.secret").write_text("s3cr3t-from-file\n")
    with WebhookReceiver("s3cr3t-from-file", serving="2") as hook:
        hook.fail(503, count=1)
        cfg = load_config(config(tmp_path, {"kind": "webhook", "url": hook.url("/rollback"),
                                            "verify_url": hook.url("/serving"), "secret_file": "hook.secret",
                                            "backoff_s": 0.01}))
        ex = build_serving_executor(cfg.models[0], serving_registry(), base_dir=cfg.base_dir)
        assert ex is not None and drive(ex, STEP) == "done"
        assert drive(ex, STEP) == "already"
        assert [a["to_version"] for a in hook.actions] == ["1"]
