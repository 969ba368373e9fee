"""A challenger whose own labelled predictions show a performance drop is neither promoted
nor suggested, however its KPIs and SLOs compare. Its KPIs passing against the champion's,
Vigil auto-promoted v2 while the same cycles' critical incident said v2's realised accuracy
was 40 % below the reference."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pandas as pd
from fastapi.testclient import TestClient

from monitor.api.app import create_app
from monitor.store.canary import runs
from tests.helpers_vigil import MODEL, T0, make_config, make_vigil, model_config, serving_registry
from tests.unit.monitor.test_canary_cycle import prometheus
from tests.unit.monitor.test_performance_cycle import INGEST, REF_END, REF_START, H, _hour, _labels


def _canary_with_labels(tmp_path: Path, challenger_accuracy: float, **canary: Any):
    """v1 the champion, v2 the challenger taking half the last hour's predictions, every label in."""
    hours = [_hour(REF_START + i * H, 200, 0.9, 1000 + i) for i in range(24)]
    hours += [_hour(T0 - k * H, 300, 0.9, k) for k in range(12, 1, -1)]
    hours += [_hour(T0 - H, 300, 0.9, 501), _hour(T0 - H, 300, challenger_accuracy, 502).assign(model_version="2")]
    world = pd.concat(hours, ignore_index=True)
    (tmp_path / "samples").mkdir()
    world.drop(columns="_truth").to_csv(tmp_path / "samples" / "predictions.csv", index=False)
    performance = {"task": "classification", "prediction_column": "churn_pred", "probability_column": "churn_score",
                   "reference": {"start": REF_START, "end": REF_END}, "window": "1h", "horizon": "1d",
                   "min_labels": 100}
    m = model_config(samples={"path": "samples"}, performance=performance,
                     canary={"alias": "challenger", "window": "1h", **canary})
    tokens = [{"name": "feeder", "role": "ingest", "token_sha256": hashlib.sha256(INGEST.encode()).hexdigest()}]
    registry = serving_registry(versions=("1", "2"))
    registry.aliases[(MODEL, "challenger")] = "2"
    vigil = make_vigil(make_config(tmp_path, models=[m], api={"tokens": tokens}), registry=registry,
                       prometheus=prometheus())  # KPIs and SLOs of both versions alike: the canary passes
    client = TestClient(create_app(vigil), raise_server_exceptions=False)
    r = client.post("/v1/labels", json={"model": MODEL, "labels": _labels(world, T0)},
                    headers={"Authorization": f"Bearer {INGEST}"})
    assert r.status_code == 202
    return vigil, registry


def test_a_challenger_whose_accuracy_dropped_is_not_promoted(tmp_path: Path) -> None:
    # `pull: false`: a realised drop pulls it otherwise (test_canary_performance_pull.py)
    vigil, registry = _canary_with_labels(tmp_path, 0.55, promote_after_cycles=2, auto_promote=True, pull=False)
    reports = [vigil.run_cycle(MODEL, T0 + 60 * (k + 1)) for k in range(3)]
    assert registry.aliases[(MODEL, "champion")] == "1", "promoted a challenger whose accuracy dropped 40 %"
    for report in reports:
        assert report.canary is not None and report.canary.overall == "pass"  # on its KPIs and SLOs
        assert any(f.kind == "performance_drop" and f.evidence["version"] == "2" for f in report.findings)
    with vigil.store.tx() as s:
        (run,) = runs(s, MODEL)
        assert run.pass_streak == 0 and "own performance dropped: realised" in run.detail
        assert "version 2" in run.detail


def test_a_challenger_as_good_as_the_champion_on_its_labels_is_promoted(tmp_path: Path) -> None:
    vigil, registry = _canary_with_labels(tmp_path, 0.9, promote_after_cycles=2, auto_promote=True)
    for k in range(2):
        vigil.run_cycle(MODEL, T0 + 60 * (k + 1))
    assert registry.aliases[(MODEL, "champion")] == "2"


def test_once_the_challenger_recovers_its_run_no_longer_says_it_is_held(tmp_path: Path) -> None:
    """The "not promoted: ... own performance dropped" detail stayed on the run after the
    challenger's labels were corrected and its passes counted again: the API said it was
    held while it was on its way to promotion."""
    vigil, registry = _canary_with_labels(tmp_path, 0.55, promote_after_cycles=3, pull=False)
    vigil.run_cycle(MODEL, T0 + 60)
    with vigil.store.tx() as s:
        assert "own performance dropped" in runs(s, MODEL)[0].detail
    rows = pd.read_csv(tmp_path / "samples" / "predictions.csv", dtype={"prediction_id": str})
    mine = rows[rows["model_version"].astype(str) == "2"]
    corrected = [{"prediction_id": pid, "label": int(y), "timestamp": T0 + 90}
                 for pid, y in zip(mine["prediction_id"], mine["churn_pred"], strict=True)]
    client = TestClient(create_app(vigil), raise_server_exceptions=False)
    r = client.post("/v1/labels", json={"model": MODEL, "labels": corrected},
                    headers={"Authorization": f"Bearer {INGEST}"})
    assert r.status_code == 202
    report = vigil.run_cycle(MODEL, T0 + 120)
    assert not any(f.kind == "performance_drop" and f.evidence["version"] == "2" for f in report.findings)
    with vigil.store.tx() as s:
        (run,) = runs(s, MODEL)
        assert run.pass_streak == 1 and "not promoted" not in run.detail, run.detail
    assert registry.aliases[(MODEL, "challenger")] == "2"
