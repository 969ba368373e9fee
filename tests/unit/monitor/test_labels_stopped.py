"""Labels that stop arriving are said, not read as "no degradation": the realised figures
shown then belong to an older window, and a regression model has nothing else to judge."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from monitor.store.labels import Label
from tests.helpers_vigil import T0, make_config, make_vigil, model_config

H = 3600.0
REF = T0 - 3 * 86400


def _vigil(tmp_path: Path):  # type: ignore[no-untyped-def]
    performance = {"task": "regression", "prediction_column": "eta_pred", "window": "1h", "horizon": "1d",
                   "min_labels": 100, "reference": {"start": REF, "end": REF + 2 * H}}
    return make_vigil(make_config(tmp_path, models=[model_config("eta", kpis=[], slos=[],
                                                                 performance=performance)]))


def _hour(vigil, start: float, label_delay: float | None, seed: int) -> None:  # type: ignore[no-untyped-def]
    """300 predictions in the hour from `start`; their labels `label_delay` later (None: never)."""
    rng = np.random.default_rng(seed)
    truth = rng.uniform(10, 60, 300)
    ids = [f"{seed}-{i}" for i in range(300)]
    vigil.store.add_samples("eta", [(start + 10 * i, {"prediction_id": ids[i], "eta_pred": float(truth[i] + 2),
                                                      "model_version": "1"}) for i in range(300)])
    if label_delay is not None:
        vigil.store.labels.add("eta", [Label(ids[i], float(truth[i]), start + 10 * i + label_delay)
                                       for i in range(300)], start)


def _labels_gap(vigil, t: float) -> list[str]:  # type: ignore[no-untyped-def]
    out = vigil.run_cycle("eta", t)
    return [f.message for f in out.findings if f.kind == "no_data" and f.entity == "labels"]


def test_labels_that_stopped_arriving_are_a_finding(tmp_path: Path) -> None:
    vigil = _vigil(tmp_path)
    _hour(vigil, REF, 1800, 0)
    _hour(vigil, REF + H, 1800, 1)
    for k in range(12, 0, -1):  # labels land 30 minutes late, until the label feed dies 6 hours ago
        _hour(vigil, T0 - k * H, 1800 if k > 6 else None, 100 + k)
    [gap] = _labels_gap(vigil, T0)  # the last hour's labels are not due yet
    assert "no label for the 1500 predictions since 2027-01-15 02:00 UTC (5 window(s))" in gap
    assert "within 0.5 h at 100% coverage" in gap


def test_labels_still_on_their_way_are_no_finding(tmp_path: Path) -> None:
    vigil = _vigil(tmp_path)
    _hour(vigil, REF, 1800, 0)
    _hour(vigil, REF + H, 1800, 1)
    for k in range(12, 0, -1):  # the last hour's labels are not due yet
        _hour(vigil, T0 - k * H, 1800 if k > 1 else None, 100 + k)
    assert _labels_gap(vigil, T0) == []


def test_labels_stopped_longer_than_the_horizon_stay_a_finding(tmp_path: Path) -> None:
    """Once the last labelled window left the horizon, the stop was no longer said: the
    warning resolved (an "all clear") while not one label had arrived for a day."""
    vigil = _vigil(tmp_path)
    _hour(vigil, REF, 1800, 0)
    _hour(vigil, REF + H, 1800, 1)
    for k in range(36, 0, -1):  # labels land 30 minutes late until 30 hours ago; the horizon is 1 day
        _hour(vigil, T0 - k * H, 1800 if k > 30 else None, 100 + k)
    [gap] = _labels_gap(vigil, T0)
    assert "no label for any of the 7200 predictions of the horizon (since 2027-01-14 08:00 UTC)" in gap


def test_no_finding_for_a_model_whose_predictions_began_recently(tmp_path: Path) -> None:
    vigil = _vigil(tmp_path)
    _hour(vigil, REF, 1800, 0)
    _hour(vigil, REF + H, 1800, 1)
    for k in range(3, 0, -1):  # serving for 3 hours, labels not due yet (a day late)
        _hour(vigil, T0 - k * H, None, 100 + k)
    assert _labels_gap(vigil, T0) == []


def test_one_late_correction_does_not_hide_labels_that_stopped(tmp_path: Path) -> None:
    """A single label corrected 12 hours after its prediction made "the slowest label" 12 h,
    and the stopped feed went unsaid for 12 hours more: what a window can expect is read off
    the windows' typical (median) delay, not one straggler."""
    vigil = _vigil(tmp_path)
    _hour(vigil, REF, 1800, 0)
    _hour(vigil, REF + H, 1800, 1)
    for k in range(12, 0, -1):  # labels land 30 minutes late, until the label feed dies 6 hours ago
        _hour(vigil, T0 - k * H, 1800 if k > 6 else None, 100 + k)
    first = vigil.store.labels.between("eta", T0 - 12 * H, T0 - 11 * H)[0]
    vigil.store.labels.add("eta", [Label(first.prediction_id, first.label + 1.0, T0 - 600)], T0 - 600)
    [gap] = _labels_gap(vigil, T0)
    assert "no label for the 1500 predictions since 2027-01-15 02:00 UTC (5 window(s))" in gap
    assert "within 0.5 h at 100% coverage" in gap


def test_metrics_show_the_version_serving_now_not_the_busiest_of_the_horizon(tmp_path: Path) -> None:
    """A day after v2 replaced v1, /metrics still showed v1's last window (v1 had made most of
    the horizon's predictions): the dashboard's realised MAE was a version no longer serving."""
    from tests.helpers_vigil import metric_value

    vigil = _vigil(tmp_path)
    _hour(vigil, REF, 1800, 0)
    _hour(vigil, REF + H, 1800, 1)
    for k in range(20, 0, -1):  # v1 for 20 hours; then v2, 4 minutes worse, for the last 4
        rng = np.random.default_rng(200 + k)
        truth = rng.uniform(10, 60, 300)
        version, err = ("2", 6.0) if k <= 4 else ("1", 2.0)
        ids = [f"{k}-{i}" for i in range(300)]
        start = T0 - k * H
        vigil.store.add_samples("eta", [(start + 10 * i, {"prediction_id": ids[i], "eta_pred": float(truth[i] + err),
                                                          "model_version": version}) for i in range(300)])
        vigil.store.labels.add("eta", [Label(ids[i], float(truth[i]), start + 10 * i + 600) for i in range(300)],
                               start)
    vigil.run_cycle("eta", T0)
    assert metric_value(vigil, "vigil_model_performance", model="eta", metric="mae", basis="realised") == 6.0


def test_ids_reused_by_another_version_are_said_not_dropped_unseen(tmp_path: Path) -> None:
    """v2 numbered its predictions from 0 again: every v1 prediction sharing an id with a v2
    one was dropped from the join without a word, and its label joined v2's prediction."""
    vigil = _vigil(tmp_path)
    _hour(vigil, REF, 1800, 0)
    _hour(vigil, REF + H, 1800, 1)
    rng = np.random.default_rng(9)
    for k, version in ((3, "1"), (2, "2")):
        start = T0 - k * H
        truth = rng.uniform(10, 60, 300)
        vigil.store.add_samples("eta", [(start + 10 * i, {"prediction_id": f"n{i}", "eta_pred": float(truth[i]),
                                                          "model_version": version}) for i in range(300)])
    vigil.run_cycle("eta", T0)
    note = vigil.store.labels.report("eta")["note"]
    assert "300 prediction ids logged by more than one version" in note and "'n0'" in note
