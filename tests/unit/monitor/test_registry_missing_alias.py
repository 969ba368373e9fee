"""A registered model or alias MLflow does not hold (a typo in `registry`, an alias deleted)
turns deploy tracking and the automatic rollback off for the model. One warning line was
all an operator got; it is now shown as an unreachable source is: `registry:<model>` down
in /readyz (degraded) and in `vigil_source_up` (VigilSourceDown), never a page per cycle."""
from __future__ import annotations

import logging

import yaml
from fastapi.testclient import TestClient

from monitor.api.app import create_app
from monitor.reload import reload_vigil
from tests.helpers_vigil import MODEL, T0, make_config, make_vigil, metric_value, model_config, serving_registry

SOURCE = f"registry:{MODEL}"


def test_an_alias_the_registry_lacks_shows_in_readyz_and_metrics_until_it_is_back(tmp_path, caplog):
    reg = serving_registry()
    del reg.aliases[(MODEL, "champion")]  # deleted by someone, or never set on this registered model
    v = make_vigil(make_config(tmp_path), registry=reg, notifiers={})
    client = TestClient(create_app(v), raise_server_exceptions=False)

    with caplog.at_level(logging.WARNING, logger="vigil.deploys"):
        for i in range(3):
            v.run_cycle(MODEL, T0 + 60 * i)

    body = client.get("/readyz").json()
    assert body["status"] == "degraded", body
    src = body["sources"][SOURCE]
    assert src["status"] == "down" and "'champion'" in src["detail"] and "not tracked" in src["detail"], src
    assert body["sources"]["mlflow"]["status"] == "up", "the registry answers: only this model's alias is missing"
    assert metric_value(v, "vigil_source_up", source=SOURCE) == 0
    assert caplog.text.count("registry has no such model or alias") == 1, "said once, not every cycle"

    reg.aliases[(MODEL, "champion")] = "1"
    v.run_cycle(MODEL, T0 + 180)

    body = client.get("/readyz").json()
    assert body["status"] == "ready" and body["sources"][SOURCE]["status"] == "up", body
    assert metric_value(v, "vigil_source_up", source=SOURCE) == 1


def test_a_model_whose_alias_is_found_has_no_registry_entry_of_its_own(tmp_path):
    v = make_vigil(make_config(tmp_path), registry=serving_registry(), notifiers={})
    v.run_cycle(MODEL, T0)
    assert SOURCE not in v.health.states, "a fleet of 1,000 found aliases is no 1,000 lines in /readyz"


def test_a_reload_that_removes_the_model_drops_its_registry_entry(tmp_path):
    reg = serving_registry()
    del reg.aliases[(MODEL, "champion")]
    old = make_vigil(make_config(tmp_path, models=[model_config(), model_config("fraud")]), registry=reg,
                     notifiers={})
    old.run_cycle(MODEL, T0)
    assert old.health.is_down(SOURCE)
    path = tmp_path / "vigil.yaml"
    path.write_text(yaml.safe_dump({"store": {"url": f"sqlite:///{tmp_path / 'vigil.db'}"},
                                    "slack": {"sink_path": "n.jsonl"}, "models": [model_config("fraud")]}))
    new, _ = reload_vigil(old, str(path))
    assert SOURCE not in new.health.states, "/readyz must not report a model nobody monitors any more"
    assert new.metrics.registry.get_sample_value("vigil_source_up", {"source": SOURCE}) is None



def test_status_and_the_models_api_name_a_misspelt_registered_model_as_blind_until_it_is_read(
        tmp_path, capsys, monkeypatch):
    """A first run with `name: recomender` showed `blind: nothing` in `vigil status` and in
    GET /v1/models: the all clear README's quick start tells people to look at, for a
    model whose deploys were not tracked at all."""
    from monitor.cli import main

    monkeypatch.setenv("VIGIL_TEST_TOKEN", "t0ken-for-the-test")
    reg = serving_registry()
    del reg.aliases[(MODEL, "champion")]  # the config names what MLflow does not hold
    cfg = make_config(tmp_path, api={"token": "${VIGIL_TEST_TOKEN}"})
    v = make_vigil(cfg, registry=reg, notifiers={})
    client = TestClient(create_app(v), raise_server_exceptions=False)
    auth = {"Authorization": "Bearer t0ken-for-the-test"}
    v.run_cycle(MODEL, T0)

    blind = client.get(f"/v1/models/{MODEL}", headers=auth).json()["blind"]
    assert any("MLflow has no registered model" in line and "'champion'" in line for line in blind), blind
    assert main(["status", "--store", cfg.store.url]) == 0
    out = capsys.readouterr().out
    assert "blind:         nothing" not in out, out
    assert f"registry: MLflow has no registered model '{MODEL}' with an alias 'champion'" in out, out

    reg.aliases[(MODEL, "champion")] = "1"
    v.run_cycle(MODEL, T0 + 60)
    assert not [b for b in client.get(f"/v1/models/{MODEL}", headers=auth).json()["blind"] if "registry" in b]
    assert main(["status", "--store", cfg.store.url]) == 0
    assert "registry:" not in capsys.readouterr().out
