"""Retention vs delayed labels: the purge job must not delete the ingested predictions the
performance stage still reads (its reference period, its horizon), or a model's
performance monitoring goes blind two weeks after it was set up."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from monitor.config_retention import DAY
from monitor.daemon import Runtime, _purge_job
from monitor.store.labels import Label
from tests.helpers_vigil import T0, make_config, make_vigil, model_config

H = 3600.0
REF_START = T0 - 20 * DAY  # the reference week: older than the default 14 days of sample retention


def _vigil(tmp_path: Path, **perf: Any) -> Any:
    performance = {"task": "classification", "prediction_column": "churn_pred", "probability_column": "churn_score",
                   "reference": {"start": REF_START, "end": REF_START + 2 * H}, "window": "1h", "horizon": "1d",
                   "min_labels": 100, **perf}
    m = model_config("churn", kpis=[], slos=[], performance=performance)
    return make_vigil(make_config(tmp_path, models=[m]))


def _log(vigil: Any, start: float, n: int, seed: int) -> None:
    """n predictions posted (the store's samples) from `start`, and their labels an hour later."""
    rng = np.random.default_rng(seed)
    pred = rng.integers(0, 2, n)
    truth = np.where(rng.random(n) < 0.9, pred, 1 - pred)
    ids = [f"{seed}-{i}" for i in range(n)]
    vigil.store.add_samples("churn", [(start + i, {"prediction_id": ids[i], "churn_pred": int(pred[i]),
                                                   "churn_score": 0.9 if pred[i] else 0.1, "model_version": "1"})
                                      for i in range(n)])
    vigil.store.labels.add("churn", [Label(ids[i], float(truth[i]), start + H + i) for i in range(n)], vigil.now())


def _performance_blind(vigil: Any, t: float) -> list[str]:
    out = vigil.run_cycle("churn", t)
    return [f.message for f in out.findings if f.kind == "no_data" and f.entity == "performance"]


def test_the_purge_keeps_the_reference_period_a_performance_model_is_judged_against(tmp_path: Path) -> None:
    vigil = _vigil(tmp_path)
    _log(vigil, REF_START, 300, 1)
    _log(vigil, T0 - 3 * H, 300, 2)
    assert _performance_blind(vigil, T0) == []
    _purge_job(Runtime(vigil, None))  # retention.samples: the default 14 days
    # The next refit of the reference (once a window) still finds its predictions.
    assert _performance_blind(vigil, T0 + 2 * H) == []
    assert vigil.store.labels.report("churn")["reference_labels"] == 300


def test_the_purge_keeps_predictions_of_the_horizon_whose_labels_may_still_land(tmp_path: Path) -> None:
    vigil = _vigil(tmp_path, horizon="30d")  # labels up to 30 days late, retention 14 days
    _log(vigil, REF_START, 300, 1)
    _log(vigil, T0 - 16 * DAY, 300, 3)  # inside the horizon, older than the retention
    vigil.run_cycle("churn", T0)
    _purge_job(Runtime(vigil, None))
    vigil.run_cycle("churn", T0 + 60)
    windows = vigil.store.labels.report("churn")["windows"]
    # the reference hour, then the hour of day -16
    assert [w["predictions"] for w in windows if w["start"] < T0 - 15 * DAY] == [300, 300]


def _label_ids(vigil: Any) -> set[str]:
    from sqlalchemy import select

    from monitor.store.labels import LabelRow

    with vigil.store.tx() as s:
        return set(s.scalars(select(LabelRow.prediction_id)))


def test_the_purge_deletes_labels_past_retention_and_keeps_a_backfilled_reference(tmp_path: Path) -> None:
    """The labels table grew for ever. Purged by the label's own time, a reference whose labels
    were backfilled (posted two weeks after the predictions, with that day's time) lost them
    and performance went blind; only labels of predictions no reader keeps may go."""
    vigil = _vigil(tmp_path)
    _log(vigil, REF_START, 300, 1)  # the reference's predictions ...
    rng = np.random.default_rng(7)
    backfill = [Label(f"1-{i}", float(rng.integers(0, 2)), T0 - 15 * DAY + i) for i in range(300)]
    vigil.store.labels.add("churn", backfill, T0 - 15 * DAY)  # ... labelled late, 15 days ago
    _log(vigil, T0 - 17 * DAY, 300, 4)  # past retention and horizon: their labels can go
    _log(vigil, T0 - 3 * H, 300, 2)  # in the horizon
    vigil.store.labels.add("gone", [Label("x", 1.0, T0 - 30 * DAY)], T0 - 30 * DAY)  # a removed model's
    assert _performance_blind(vigil, T0) == []
    _purge_job(Runtime(vigil, None))
    kept = _label_ids(vigil)
    assert {f"1-{i}" for i in range(300)} <= kept and {f"2-{i}" for i in range(300)} <= kept
    assert not kept & {f"4-{i}" for i in range(300)} and "x" not in kept
    assert _performance_blind(vigil, T0 + 2 * H) == []  # the refit still finds the reference's labels
    assert vigil.store.labels.report("churn")["reference_labels"] == 300
