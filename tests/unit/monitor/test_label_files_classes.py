"""A classifier's label files must hold classes: a label that is no class (a probability
exported by mistake, a third class) is left out and counted, never read as the negative
class; when none is a class, performance says so as no data instead of judging garbage."""
from __future__ import annotations

from pathlib import Path

from tests.helpers_vigil import T0, make_vigil
from tests.unit.monitor.test_performance_cycle import _config, _world


def _label_file(tmp_path: Path, n_bad: int | None) -> None:
    frame = _world(tmp_path)
    (tmp_path / "labels").mkdir()
    done = frame.assign(timestamp=frame["timestamp"] + 600, label=frame["_truth"].astype(float))
    bad = done.index if n_bad is None else done.index[len(done) - n_bad:]  # the newest: the horizon's
    done.loc[bad, "label"] = done.loc[bad, "label"] * 0.8 + 0.1  # a probability, not a class
    done[["prediction_id", "label", "timestamp"]].to_csv(tmp_path / "labels" / "day.csv", index=False)


def test_label_file_values_that_are_no_class_are_left_out_and_counted(tmp_path: Path) -> None:
    _label_file(tmp_path, 1800)  # half the horizon's
    vigil = make_vigil(_config(tmp_path, labels={"path": "labels"}))
    vigil.run_cycle("churn", T0 + 1200)
    report = vigil.store.labels.report("churn")
    assert "labels in label files left out" in report["note"] and "e.g. 0.1" in report["note"]


def test_label_files_without_a_single_class_are_no_data_not_a_drop(tmp_path: Path) -> None:
    _label_file(tmp_path, None)  # every one
    vigil = make_vigil(_config(tmp_path, labels={"path": "labels"}))
    out = vigil.run_cycle("churn", T0 + 1200)
    assert not [f for f in out.findings if f.kind == "performance_drop"], [f.message for f in out.findings]
    [gap] = [f for f in out.findings if f.kind == "no_data" and f.entity == "performance"]
    assert "expected a class" in gap.message and "'label'" in gap.message


def test_a_label_file_without_the_label_column_is_named_not_skipped(tmp_path: Path) -> None:
    """The export renamed its label column one day: that file's labels were read as missing
    and dropped unsaid (other files had the column), and its hours looked unlabelled."""
    frame = _world(tmp_path)
    (tmp_path / "labels").mkdir()
    done = frame.assign(timestamp=frame["timestamp"] + 600, label=frame["_truth"])
    old = done["timestamp"] < T0 - 6 * 3600
    done[old][["prediction_id", "label", "timestamp"]].to_csv(tmp_path / "labels" / "a.csv", index=False)
    done[~old].rename(columns={"label": "churned"})[["prediction_id", "churned", "timestamp"]].to_csv(
        tmp_path / "labels" / "b.csv", index=False)
    vigil = make_vigil(_config(tmp_path, labels={"path": "labels"}))
    out = vigil.run_cycle("churn", T0 + 1200)
    [gap] = [f for f in out.findings if f.kind == "no_data" and f.entity == "performance"]
    assert "b.csv" in gap.message and "column 'label' not found" in gap.message and "churned" in gap.message


def test_a_label_path_that_does_not_exist_is_no_data_at_once(tmp_path: Path) -> None:
    """`labels: {path: lables/}` (a typo) read as "no label file yet": every window said
    "0 labels ... no realised figures yet" and nothing told the path was wrong."""
    _world(tmp_path)
    vigil = make_vigil(_config(tmp_path, labels={"path": "lables"}))
    out = vigil.run_cycle("churn", T0 + 1200)
    [gap] = [f for f in out.findings if f.kind == "no_data" and f.entity == "performance"]
    assert "lables" in gap.message and "no such file or directory" in gap.message


def _text_labels(tmp_path: Path, rows: slice) -> None:
    frame = _world(tmp_path)
    (tmp_path / "labels").mkdir()
    done = frame.assign(timestamp=frame["timestamp"] + 600, label=frame["_truth"].astype(object))
    done.loc[done.index[rows], "label"] = "unknown"
    for k, part in enumerate((done.iloc[: len(done) // 2], done.iloc[len(done) // 2:])):
        part[["prediction_id", "label", "timestamp"]].to_csv(tmp_path / "labels" / f"day-{k}.csv", index=False)


def test_a_text_label_is_left_out_named_with_its_file_and_the_rest_scored(tmp_path: Path) -> None:
    """One "unknown" among the day's labels raised for the whole window: the performance
    stage went blind for every cycle the row stayed in the horizon, and the accuracy drop
    the other labels showed was never alerted. Now that row is refused, counted and named
    (its file, its column, what was expected), and the rest are judged."""
    _text_labels(tmp_path, slice(-5, -4))
    vigil = make_vigil(_config(tmp_path, labels={"path": "labels"}))
    out = vigil.run_cycle("churn", T0 + 1200)
    assert not [f for f in out.findings if f.kind == "no_data" and f.entity == "performance"]
    assert any(f.kind == "performance_drop" and f.evidence["basis"] == "realised" for f in out.findings)
    note = vigil.store.labels.report("churn")["note"]
    assert "1 of " in note and "day-1.csv column 'label'" in note and "'unknown'" in note, note
    assert "expected finite numeric labels" in note


def test_a_label_column_of_text_only_is_no_data_naming_its_file_and_column(tmp_path: Path) -> None:
    """Among a directory of daily label files, "label files .../labels column 'label':
    expected finite numeric labels, got 'unknown'" left the operator to search every file."""
    _text_labels(tmp_path, slice(None))
    vigil = make_vigil(_config(tmp_path, labels={"path": "labels"}))
    out = vigil.run_cycle("churn", T0 + 1200)
    [gap] = [f for f in out.findings if f.kind == "no_data" and f.entity == "performance"]
    assert "day-0.csv" in gap.message and "column 'label'" in gap.message and "'unknown'" in gap.message


def test_a_text_label_in_the_reference_file_is_left_out_and_said(tmp_path: Path) -> None:
    """`reference: {path}`: one "unknown" among the labelled file's labels failed the refit,
    and with it the whole stage, every cycle, until the file was fixed."""
    frame = _world(tmp_path)
    ref = frame[frame["timestamp"] < T0 - 2 * 86400].assign(label=lambda d: d["_truth"].astype(object))
    ref.loc[ref.index[3], "label"] = "unknown"
    ref.drop(columns=["_truth", "timestamp"]).to_csv(tmp_path / "reference.csv", index=False)
    (tmp_path / "labels").mkdir()
    frame.assign(timestamp=frame["timestamp"] + 600, label=frame["_truth"])[["prediction_id", "label", "timestamp"]
                                                                             ].to_csv(tmp_path / "labels" / "l.csv",
                                                                                      index=False)
    vigil = make_vigil(_config(tmp_path, labels={"path": "labels"}, reference={"path": "reference.csv"}))
    out = vigil.run_cycle("churn", T0 + 1200)
    assert not [f for f in out.findings if f.kind == "no_data" and f.entity == "performance"]
    assert any(f.kind == "performance_drop" and f.evidence["basis"] == "realised" for f in out.findings)
    report = vigil.store.labels.report("churn")
    assert report["reference_labels"] == len(ref) - 1
    assert "reference: 1 of " in report["note"] and "reference.csv column 'label'" in report["note"], report["note"]
