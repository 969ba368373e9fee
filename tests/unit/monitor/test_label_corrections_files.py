"""A label corrected in a later label file replaces the first one, whichever file name sorts
first: the label that became known last is the prediction's label (as for POST /v1/labels)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from detectors.performance.windows import join_labels
from monitor.sources.labels import LabelFiles


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
