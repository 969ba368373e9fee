"""A label corrected in a later label file replaces the first one, whichever file name sorts
first: the label that became known last is the prediction's label (as for POST /v1/labels)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from detectors.performance.windows import join_labels
from monitor.sources.labels import LabelFiles

H = 3600.0


def test_the_label_known_last_wins_across_label_files(tmp_path: Path) -> None:
    # The nightly export, then a correction file dropped in later; the correction's name sorts first.
    pd.DataFrame({"prediction_id": ["a", "b"], "label": [0, 1], "timestamp": [1000.0, 1000.0]}).to_csv(
        tmp_path / "labels-2026-11-20.csv", index=False)
    pd.DataFrame({"prediction_id": ["a"], "label": [1], "timestamp": [5000.0]}).to_csv(
        tmp_path / "corrections.csv", index=False)
    labels = LabelFiles(str(tmp_path), "prediction_id", "label", "timestamp").window(0.0, 10_000.0)
    preds = pd.DataFrame({"prediction_id": ["a", "b"], "ts": [900.0, 900.0], "prediction": [1.0, 1.0],
                          "version": "1"})
    joined = join_labels(preds, labels).set_index("prediction_id")
    assert joined.loc["a", "label"] == 1.0 and joined.loc["a", "label_ts"] == 5000.0
    assert joined.loc["b", "label"] == 1.0


def test_a_file_correction_newer_than_the_posted_label_wins(tmp_path: Path) -> None:
    """Labels posted in real time, corrected by the nightly export: the export's label, known
    later, is the prediction's label (of two known at the same time, the posted one)."""
    from monitor.cycle.performance_inputs import PerformanceInputs
    from monitor.cycle.samples import SampleReader
    from monitor.store.labels import Label
    from tests.helpers_vigil import T0, make_vigil
    from tests.unit.monitor.test_performance_cycle import _config, _world

    _world(tmp_path)
    (tmp_path / "labels").mkdir()
    pd.DataFrame({"prediction_id": ["a", "b"], "label": [1, 0], "timestamp": [T0 - 600, T0 - 3000]}).to_csv(
        tmp_path / "labels" / "nightly.csv", index=False)
    vigil = make_vigil(_config(tmp_path, labels={"path": "labels"}))
    vigil.store.labels.add("churn", [Label("a", 0.0, T0 - 3000), Label("b", 1.0, T0 - 3000)], T0 - 3000)
    m = vigil.config.models[0]
    labels = PerformanceInputs(vigil.config, vigil.store, SampleReader(vigil.config, vigil.store)).labels(
        m, m.performance, T0 - 86400, T0)
    preds = pd.DataFrame({"prediction_id": ["a", "b"], "ts": [T0 - 3600] * 2, "prediction": [1.0, 1.0],
                          "version": "1"})
    assert join_labels(preds, labels).set_index("prediction_id")["label"].to_dict() == {"a": 1.0, "b": 1.0}


def test_a_label_file_rewritten_with_corrections_changes_the_figures(tmp_path: Path) -> None:
    """The nightly export regenerated in place, two labels of one hour corrected in opposite
    directions, their times unchanged: the window's figures stayed those of the first file
    (the cycle's cache of unchanged windows saw the same count, sum and times)."""
    import os

    import numpy as np
    from sklearn.metrics import accuracy_score

    from tests.helpers_vigil import T0, make_vigil
    from tests.unit.monitor.test_performance_cycle import _config, _world

    frame = _world(tmp_path)
    (tmp_path / "labels").mkdir()
    path = tmp_path / "labels" / "nightly.csv"
    done = frame.assign(timestamp=frame["timestamp"] + 600, label=frame["_truth"])
    done[["prediction_id", "label", "timestamp"]].to_csv(path, index=False)
    vigil = make_vigil(_config(tmp_path, labels={"path": "labels"}))
    vigil.run_cycle("churn", T0 + 1200)

    hour = done[(done["timestamp"] >= T0 - 2 * H + 600) & (done["timestamp"] < T0 - H + 600)]
    right = hour[hour["label"] == hour["churn_pred"]]  # two predicted right, one of each class: now wrong
    one, zero = right.index[right["label"] == 1][0], right.index[right["label"] == 0][0]
    fixed = done.copy()
    fixed.loc[[one, zero], "label"] = [0, 1]
    fixed[["prediction_id", "label", "timestamp"]].to_csv(path, index=False)
    os.utime(path, (os.stat(path).st_atime, os.stat(path).st_mtime + 5))

    vigil.run_cycle("churn", T0 + 1260)
    [w] = [w for w in vigil.store.labels.report("churn")["windows"] if w["start"] == T0 - 2 * H]
    rows = fixed.loc[hour.index]
    expected = accuracy_score(rows["label"].to_numpy(dtype=int), rows["churn_pred"].to_numpy(dtype=int))
    assert w["realised"]["accuracy"] == np.float64(expected)
