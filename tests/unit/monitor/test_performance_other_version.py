"""A performance drop measured on one version's predictions blames no deploy of another.
A challenger's bad accuracy (its labelled predictions, version 2) opened a critical
incident whose top cause was the champion's deploy an hour before (v1), and Vigil rolled
the champion back to v0, leaving the challenger that was failing on its alias."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
from fastapi.testclient import TestClient

from monitor.api.app import create_app
from tests.helpers_vigil import T0, make_config, make_vigil, model_config, serving_registry
from tests.unit.monitor.test_performance_cycle import INGEST, REF_END, REF_START, H, _hour, _labels, _post


def _world(tmp_path: Path, last_hour: list[pd.DataFrame]) -> pd.DataFrame:
    """A reference day and eleven hours of v0 at accuracy 0.9, then `last_hour`."""
    hours = [_hour(REF_START + i * H, 200, 0.9, 1000 + i).assign(model_version="0") for i in range(24)]
    hours += [_hour(T0 - k * H, 300, 0.9, k).assign(model_version="0") for k in range(12, 1, -1)]
    world = pd.concat(hours + last_hour, ignore_index=True)
    (tmp_path / "samples").mkdir()
    world.drop(columns="_truth").to_csv(tmp_path / "samples" / "predictions.csv", index=False)
    return world


def _run(tmp_path: Path, world: pd.DataFrame):
    """v1 takes the champion alias 80 minutes before T0, v2 the challenger alias; the last
    two hours' labels arrive at T0; the cycle at T0 + 60 reads them."""
    performance = {"task": "classification", "prediction_column": "churn_pred", "probability_column": "churn_score",
                   "reference": {"start": REF_START, "end": REF_END}, "window": "1h", "horizon": "1d",
                   "min_labels": 100}
    m = model_config("churn", kpis=[], slos=[], samples={"path": "samples"}, performance=performance,
                     canary={"alias": "challenger"})
    tokens = [{"name": "feeder", "role": "ingest", "token_sha256": hashlib.sha256(INGEST.encode()).hexdigest()}]
    registry = serving_registry("churn", "0", versions=("0", "1", "2"))
    vigil = make_vigil(make_config(tmp_path, models=[m], api={"tokens": tokens}), registry=registry)
    client = TestClient(create_app(vigil), raise_server_exceptions=False)
    assert _post(client, _labels(world[world.timestamp < T0 - 2 * H], T0 - 2 * H)).status_code == 202
    vigil.run_cycle("churn", T0 - 100 * 60)
    registry.aliases[("churn", "champion")] = "1"
    registry.aliases[("churn", "challenger")] = "2"
    vigil.run_cycle("churn", T0 - 80 * 60)
    vigil.run_cycle("churn", T0 - 30)
    assert _post(client, _labels(world[world.timestamp >= T0 - 2 * H], T0)).status_code == 202
    return vigil.run_cycle("churn", T0 + 60), registry


def test_the_challengers_accuracy_drop_never_rolls_the_champion_back(tmp_path: Path) -> None:
    world = _world(tmp_path, [_hour(T0 - H, 300, 0.9, 501).assign(model_version="1"),
                              _hour(T0 - H, 300, 0.55, 502).assign(model_version="2")])
    report, registry = _run(tmp_path, world)
    drops = [f for f in report.findings if f.kind == "performance_drop"]
    assert drops and {f.evidence["version"] for f in drops} == {"2"}  # the challenger's, said as such
    assert report.severity == "critical"  # people are told ...
    assert registry.aliases[("churn", "champion")] == "1"  # ... v1 stays; the failing challenger is pulled
    assert report.rollback is not None and report.rollback["kind"] == "canary_pull"
    assert report.rollback["from_version"] == "2" and ("churn", "challenger") not in registry.aliases
    assert report.incident is not None and not [c for c in report.incident.causes if c.kind == "deploy"]


def test_the_champions_own_accuracy_drop_still_blames_its_deploy(tmp_path: Path) -> None:
    world = _world(tmp_path, [_hour(T0 - H, 300, 0.55, 501).assign(model_version="1"),
                              _hour(T0 - H, 300, 0.9, 502).assign(model_version="2")])
    report, registry = _run(tmp_path, world)
    assert report.incident is not None and report.incident.causes[0].entity == "churn v1"
    assert report.rollback is not None and registry.aliases[("churn", "champion")] == "0"
