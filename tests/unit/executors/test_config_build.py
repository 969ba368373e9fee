"""`models[].serving` in vigil.yaml, and the executors built from it."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from monitor.config import ConfigError, parse_config
from monitor.executors.argo import ArgoRolloutsExecutor
from monitor.executors.base import ExecutorError
from monitor.executors.build import alias_executor, build_serving_executor
from monitor.executors.config import KServeExecutorConfig
from monitor.executors.kserve import KServeExecutor
from monitor.executors.mlflow_alias import MlflowAliasExecutor
from monitor.executors.webhook import WebhookExecutor
from tests.helpers_vigil import serving_registry

KSERVE = {"kind": "kserve", "namespace": "ml", "name": "recommender",
          "storage_uri_template": "s3://models/{registry}/{version}", "api_url": "http://127.0.0.1:8001"}


def model(serving: dict | None) -> dict:
    return {"name": "recommender", **({"serving": serving} if serving is not None else {})}


def errors_of(serving: dict) -> dict[str, str]:
    with pytest.raises(ConfigError) as e:
        parse_config({"models": [model(serving)]})
    return dict(e.value.errors)


def test_without_serving_the_alias_is_all() -> None:
    cfg = parse_config({"models": [model(None)]}).models[0]
    assert cfg.serving is None
    assert build_serving_executor(cfg, serving_registry()) is None
    assert isinstance(alias_executor(serving_registry(), "champion"), MlflowAliasExecutor)


def test_each_kind_builds_its_executor(monkeypatch: pytest.MonkeyPatch) -> None:
    reg = serving_registry()
    kinds = {
        "kserve": (KSERVE, KServeExecutor),
        "argo": ({"kind": "argo_rollouts", "namespace": "ml", "name": "recommender", "api_url": "http://127.0.0.1:1"},
                 ArgoRolloutsExecutor),
        "webhook": ({"kind": "webhook", "url": "https://deployer.local/rollback",
                     "verify_url": "https://deployer.local/serving", "secret_env": "HOOK_SECRET"}, WebhookExecutor),
        "alias": ({"kind": "mlflow_alias", "alias": "production"}, MlflowAliasExecutor),
    }
    for serving, cls in kinds.values():
        cfg = parse_config({"models": [model(serving)]}).models[0]
        assert isinstance(build_serving_executor(cfg, reg), cls), serving["kind"]
    same_alias = parse_config({"models": [model({"kind": "mlflow_alias"})]}).models[0]
    assert build_serving_executor(same_alias, reg) is None  # the alias moves anyway


def test_kserve_defaults() -> None:
    cfg = parse_config({"models": [model(KSERVE)]}).models[0].serving
    assert isinstance(cfg, KServeExecutorConfig)
    assert (cfg.mode, cfg.timeout_s, cfg.max_attempts, cfg.in_cluster) == ("auto", 10.0, 3, False)


def test_a_template_without_version_is_refused() -> None:
    errs = errors_of({**KSERVE, "storage_uri_template": "s3://models/{registry}/latest"})
    [(where, msg)] = errs.items()
    assert where.startswith("models[0](recommender).serving") and where.endswith("storage_uri_template")
    assert "{version}" in msg
    errs = errors_of({**KSERVE, "storage_uri_template": "s3://models/{bucket}/{version}"})
    assert "unknown placeholder" in next(iter(errs.values()))


def test_unknown_kind_and_fields_are_refused() -> None:
    assert "kserve" in next(iter(errors_of({"kind": "seldon", "name": "x"}).values()))
    errs = errors_of({**KSERVE, "storageUri": "x"})
    assert any("unknown key" in m for m in errs.values())


def test_one_way_to_reach_kubernetes() -> None:
    msg = next(iter(errors_of({**KSERVE, "in_cluster": True}).values()))
    assert "api_url and in_cluster" in msg


def test_webhook_needs_exactly_one_secret_and_never_echoes_it() -> None:
    base = {"kind": "webhook", "url": "https://d.local/r", "verify_url": "https://d.local/s"}
    assert "exactly one" in next(iter(errors_of(base).values()))
    errs = errors_of({**base, "secret_env": "whsec 9f8e7d-real-secret"})
    assert not any("9f8e7d" in m for m in errs.values())
    assert "name of an environment variable" in next(iter(errs.values()))


def test_kubeconfig_from_a_file_relative_to_the_config(tmp_path: Path) -> None:
    kubeconfig = {"apiVersion": "v1", "kind": "Config", "current-context": "prod",
                  "clusters": [{"name": "c", "cluster": {"server": "https://10.0.0.1:6443"}}],
                  "users": [{"name": "u", "user": {"token": "t0k3n"}}],
                  "contexts": [{"name": "prod", "context": {"cluster": "c", "user": "u"}}]}
    (tmp_path / "kube.yaml").write_text(yaml.safe_dump(kubeconfig))
    serving = {k: v for k, v in KSERVE.items() if k != "api_url"} | {"kubeconfig": "kube.yaml"}
    cfg = parse_config({"models": [model(serving)]}).models[0]
    ex = build_serving_executor(cfg, serving_registry(), base_dir=tmp_path)
    assert isinstance(ex, KServeExecutor)
    assert ex.kube.host == "https://10.0.0.1:6443"


def test_a_missing_kubeconfig_is_a_config_error(tmp_path: Path) -> None:
    serving = {k: v for k, v in KSERVE.items() if k != "api_url"} | {"kubeconfig": "absent.yaml"}
    cfg = parse_config({"models": [model(serving)]}).models[0]
    with pytest.raises(ExecutorError) as e:
        build_serving_executor(cfg, serving_registry(), base_dir=tmp_path)
    assert (e.value.retryable, e.value.reason) == (False, "config")
    assert "ml/recommender" in e.value.detail


def test_in_cluster_outside_a_cluster_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    serving = {k: v for k, v in KSERVE.items() if k != "api_url"} | {"in_cluster": True}
    cfg = parse_config({"models": [model(serving)]}).models[0]
    with pytest.raises(ExecutorError) as e:
        build_serving_executor(cfg, serving_registry())
    assert e.value.reason == "config"


@pytest.mark.parametrize("text", ["users:\n- name: u\n  user:\n    token: abc: def\n",  # not YAML
                                  "- just\n- a list\n"])  # YAML, not a kubeconfig
def test_a_malformed_kubeconfig_is_a_config_error(tmp_path: Path, text: str) -> None:
    """A mounted Secret with the wrong content: a config error naming the layer, which fails
    the rollback (recorded), not an unexpected exception that fails every cycle of the model."""
    (tmp_path / "kube.yaml").write_text(text)
    serving = {k: v for k, v in KSERVE.items() if k != "api_url"} | {"kubeconfig": "kube.yaml"}
    cfg = parse_config({"models": [model(serving)]}).models[0]
    with pytest.raises(ExecutorError) as e:
        build_serving_executor(cfg, serving_registry(), base_dir=tmp_path)
    assert (e.value.retryable, e.value.reason) == (False, "config")
    assert "ml/recommender" in e.value.detail and "abc" not in e.value.detail
