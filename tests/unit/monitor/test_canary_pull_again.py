"""A challenger pulled on its own realised accuracy, then set on the challenger alias again
by a person (serving fixed, say), was pulled again in the next cycle: the labelled window
that pulled it (predictions made before the pull) was still in the performance horizon
and was judged again, so a re-deploy could never be tried for up to a day. Evidence from
before the version's pull is no ground to pull it again (it still holds promotion); its
predictions since the pull are, once labelled."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
from fastapi.testclient import TestClient

from monitor.api.app import create_app
from monitor.store.canary import runs
from tests.helpers_vigil import MODEL, T0
from tests.unit.monitor.test_canary_performance_hold import _canary_with_labels
from tests.unit.monitor.test_performance_cycle import INGEST, H, _hour, _labels


def _pulls(vigil) -> list[str]:
    return [a.status for a in vigil.store.actions(model=MODEL) if a.kind == "canary_pull"]


def test_a_pulled_challenger_set_again_is_not_pulled_again_on_its_old_labels(tmp_path: Path) -> None:
    vigil, registry = _canary_with_labels(tmp_path, 0.55)
    vigil.run_cycle(MODEL, T0 + 60)
    assert (MODEL, "challenger") not in registry.aliases and _pulls(vigil) == ["done"]

    registry.aliases[(MODEL, "challenger")] = "2"  # a person puts it back
    for k in range(2, 5):
        report = vigil.run_cycle(MODEL, T0 + 60 * k)
        # the old window is still in the horizon, shown as it is ...
        assert any(f.kind == "performance_drop" and f.evidence["version"] == "2" for f in report.findings)
    # ... but not judged again as grounds for a pull
    assert registry.aliases.get((MODEL, "challenger")) == "2", "pulled again on the labels that pulled it"
    assert _pulls(vigil) == ["done"]
    with vigil.store.tx() as s:
        (run,) = runs(s, MODEL)
    assert run.status == "running" and run.pass_streak == 0  # held from promotion all the same
    assert "not promoted" in run.detail and "before its pull" in run.detail, run.detail


def test_a_pulled_challenger_set_again_is_pulled_on_its_new_labels(tmp_path: Path) -> None:
    vigil, registry = _canary_with_labels(tmp_path, 0.55)
    vigil.run_cycle(MODEL, T0 + 60)
    registry.aliases[(MODEL, "challenger")] = "2"
    vigil.run_cycle(MODEL, T0 + 120)
    assert registry.aliases.get((MODEL, "challenger")) == "2"

    # an hour of its predictions after the pull, as bad, labelled
    path = tmp_path / "samples" / "predictions.csv"
    fresh = pd.concat([_hour(T0 + H, 300, 0.9, 601), _hour(T0 + H, 300, 0.55, 602).assign(model_version="2")],
                      ignore_index=True)
    rows = pd.read_csv(path, dtype={"prediction_id": str})
    pd.concat([rows, fresh.drop(columns="_truth")], ignore_index=True).to_csv(path, index=False)
    client = TestClient(create_app(vigil), raise_server_exceptions=False)
    r = client.post("/v1/labels", json={"model": MODEL, "labels": _labels(fresh, T0 + 2 * H)},
                    headers={"Authorization": f"Bearer {INGEST}"})
    assert r.status_code == 202
    vigil.run_cycle(MODEL, T0 + 2 * H + 60)
    assert (MODEL, "challenger") not in registry.aliases, "a challenger bad again kept its traffic"
    assert _pulls(vigil) == ["done", "done"]
