"""Hostile production samples: one odd column never blinds drift for the whole model,
and a detector that cannot judge a feature says so instead of staying silent."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from detectors.records import FindingKind
from tests.helpers_vigil import (
    MODEL,
    T0,
    StubPrometheus,
    make_config,
    make_vigil,
    model_config,
    serving_registry,
    vigil_on_files,
    write_reference,
)


def test_a_list_valued_categorical_column_does_not_blind_drift_of_every_feature(tmp_path):
    rng = np.random.default_rng(0)
    pd.DataFrame({"user_age": rng.normal(40, 10, 3000), "device": rng.choice(["ios", "web"], 3000),
                  "score": rng.uniform(0, 1, 3000)}).to_parquet(tmp_path / "train.parquet")
    (tmp_path / "samples").mkdir()
    n = 400
    # The serving side started logging `device` as a list (a parquet list column): pandas
    # holds each value as an array, which no hash table takes.
    pq.write_table(pa.table({
        "timestamp": T0 - 600 + np.arange(n, dtype=float),
        "user_age": rng.normal(60, 10, n),  # drifted
        "device": pa.array([["ios"], ["web", "ios"]] * (n // 2), type=pa.list_(pa.string())),
        "score": rng.uniform(0, 1, n)}), tmp_path / "samples" / "a.parquet")
    cfg = make_config(tmp_path, models=[model_config(
        kpis=[], slos=[], features=["user_age", {"name": "device", "type": "categorical"}],
        prediction_column="score", reference={"path": "train.parquet"},
        samples={"path": "samples/", "timestamp_column": "timestamp"})])
    vigil = make_vigil(cfg, prometheus=StubPrometheus(), registry=serving_registry(), notifiers={})

    report = vigil.run_cycle(MODEL, T0)

    assert not report.blind, report.blind
    kinds = {(f.kind, f.entity) for f in report.findings}
    assert (FindingKind.FEATURE_DRIFT, "user_age") in kinds  # the other features are still judged
    (new,) = [f for f in report.findings if f.entity == "device" and f.statistic == "new_category_share"]
    assert "['ios']" in new.message  # the odd values are named, as unseen categories


def _assess(reference: pd.DataFrame, current: pd.DataFrame, statistic: str):
    from detectors.drift import DriftDetector, DriftParams, FeatureSpec

    detector = DriftDetector(DriftParams(features=(FeatureSpec("x"),), statistic=statistic))
    return detector.assess(detector.fit(reference), current, 0.0, 60.0)


def test_a_statistic_that_cannot_be_computed_is_said_not_a_silent_no_drift():
    rng = np.random.default_rng(1)
    # Production starts sending the float maximum as a sentinel: the Wasserstein area
    # overflows to inf, which no threshold comparison judges.
    current = pd.DataFrame({"x": np.r_[rng.normal(size=1000), [1.7e308, -1.7e308] * 500]})
    report = _assess(pd.DataFrame({"x": rng.normal(size=2000)}), current, "wasserstein")
    assert not np.isfinite(report.features[0].statistics["wasserstein"])
    judged = [f for f in report.findings if f.entity == "x" and f.kind in (FindingKind.NO_DATA,
                                                                          FindingKind.FEATURE_DRIFT)]
    assert judged, [f.message for f in report.findings]
    assert judged[0].kind == FindingKind.NO_DATA and "wasserstein" in judged[0].message
    assert "not assessed" in judged[0].message


def test_huge_reference_values_do_not_turn_wasserstein_into_a_silent_zero():
    rng = np.random.default_rng(2)
    scale = 1e160  # squares overflow: the reference std came out inf, and W / inf = 0
    report = _assess(pd.DataFrame({"x": rng.normal(size=2000) * scale}),
                     pd.DataFrame({"x": (rng.normal(size=2000) + 5) * scale}), "wasserstein")
    assert report.features[0].statistics["wasserstein"] > 4
    assert [f.kind for f in report.findings if f.entity == "x" and f.statistic == "wasserstein"] == [
        FindingKind.FEATURE_DRIFT]


def test_a_duplicated_column_is_named_and_the_other_features_still_judged(tmp_path):
    rng = np.random.default_rng(3)
    write_reference(tmp_path, rng)
    n = 400
    # Arrow writes duplicate column names; which `user_age` is the feature nobody can say.
    pq.write_table(pa.Table.from_arrays(
        [pa.array(T0 - 600 + np.arange(n, dtype=float)), pa.array(rng.normal(40, 10, n)),
         pa.array(rng.normal(60, 10, n)), pa.array(rng.uniform(0, 1, n))],
        names=["timestamp", "user_age", "user_age", "score"]), tmp_path / "samples" / "a.parquet")
    vigil = vigil_on_files(tmp_path)

    report = vigil.run_cycle(MODEL, T0)

    assert not [line for line in report.blind if "Error" in line], report.blind
    (dup,) = [f for f in report.findings if f.entity == "user_age"]
    assert dup.kind == FindingKind.DATA_QUALITY and "appears 2 times" in dup.message, dup.message
    assert [f.kind for f in report.findings if f.entity == "score"] == []  # the prediction is still judged


def test_a_training_reference_with_a_duplicated_column_is_named_not_an_internal_error(tmp_path):
    rng = np.random.default_rng(4)
    pq.write_table(pa.Table.from_arrays(
        [pa.array(rng.normal(40, 10, 3000)), pa.array(rng.normal(40, 10, 3000)), pa.array(rng.uniform(0, 1, 3000))],
        names=["user_age", "user_age", "score"]), tmp_path / "train.parquet")
    (tmp_path / "samples").mkdir()
    n = 400
    pd.DataFrame({"timestamp": T0 - 600 + np.arange(n, dtype=float), "user_age": rng.normal(60, 10, n),
                  "score": rng.uniform(0, 1, n)}).to_parquet(tmp_path / "samples" / "a.parquet")
    vigil = vigil_on_files(tmp_path)

    report = vigil.run_cycle(MODEL, T0)

    (gap,) = [f for f in report.findings if f.kind == FindingKind.NO_DATA]
    assert gap.entity == "training reference" and "'user_age'" in gap.message and "2 times" in gap.message, \
        gap.message


def test_a_csv_of_python_isoformat_times_is_read_not_refused(tmp_path):
    from datetime import UTC, datetime

    rng = np.random.default_rng(6)
    write_reference(tmp_path, rng)
    n = 400
    # datetime.isoformat() leaves the fraction out when it is zero: one column, two spellings.
    times = [datetime.fromtimestamp(T0 - 600 + i * 1.25, UTC).isoformat() for i in range(n)]
    assert "." in times[1] and "." not in times[0]
    pd.DataFrame({"event_time": times, "user_age": rng.normal(40, 10, n), "score": rng.uniform(0, 1, n)}).to_csv(
        tmp_path / "samples" / "a.csv", index=False)
    vigil = vigil_on_files(tmp_path, timestamp_column="event_time")

    report = vigil.run_cycle(MODEL, T0)

    assert not report.blind, report.blind
    assert not [f for f in report.findings if f.kind == FindingKind.NO_DATA]


def test_missing_datetimes_in_a_numeric_feature_are_missing_not_the_year_1677():
    rng = np.random.default_rng(7)
    days = pd.Timestamp("2026-01-01") + pd.to_timedelta(rng.uniform(0, 365, 4000), unit="D")
    reference = pd.DataFrame({"x": days[:2000]})
    current = pd.DataFrame({"x": days[2000:]})
    current.loc[:299, "x"] = pd.NaT  # 15 % of the rows lost their signup date
    report = _assess(reference, current, "psi")
    fd = report.features[0]
    assert fd.n_current == 1700 and fd.quality["type_mismatch_current"] == 0
    assert fd.quality["current_min"] >= fd.quality["reference_min"] - 86400 * 1e9  # no NaT read as a number
    assert [f.statistic for f in report.findings] == ["missing_rate"]


def test_a_huge_statistic_reads_as_a_number_in_the_message():
    rng = np.random.default_rng(8)
    report = _assess(pd.DataFrame({"x": rng.normal(size=2000)}),
                     pd.DataFrame({"x": rng.normal(size=2000) * 1e200}), "wasserstein")
    (f,) = [f for f in report.findings if f.kind == FindingKind.FEATURE_DRIFT]
    assert f.message.startswith("wasserstein 8.0") and "e+199 > 0.10" in f.message and len(f.message) < 120, \
        f.message


def test_a_huge_new_category_is_named_clipped_not_copied_into_every_finding():
    import json

    from detectors.drift import DriftDetector, DriftParams, FeatureSpec

    rng = np.random.default_rng(9)
    detector = DriftDetector(DriftParams(features=(FeatureSpec("c", "categorical"),)))
    profile = detector.fit(pd.DataFrame({"c": rng.choice(["ios", "web"], 2000)}))
    huge = "A" * 1_000_000  # one posted value of a megabyte (the samples body limit is 16 MB)
    report = detector.assess(profile, pd.DataFrame({"c": [huge, huge + "B"] * 100 + ["ios"] * 1800}), 0.0, 60.0)
    (new,) = [f for f in report.findings if f.statistic == "new_category_share"]
    assert new.value == pytest.approx(0.1) and "2 new categories" in new.message
    assert len(new.message) < 2000 and len(json.dumps(new.evidence)) < 10_000
    assert sum(new.evidence["new_categories"].values()) == 200  # counts kept whole


def test_one_millisecond_time_in_a_file_of_epoch_seconds_does_not_move_the_file_to_1970(tmp_path):
    rng = np.random.default_rng(10)
    write_reference(tmp_path, rng)
    n = 400
    ts = T0 - 600 + np.arange(n, dtype=float)
    ts[-1] *= 1000  # one row logged in milliseconds by another writer
    pd.DataFrame({"timestamp": ts, "user_age": rng.normal(60, 10, n), "score": rng.uniform(0, 1, n)}).to_parquet(
        tmp_path / "samples" / "a.parquet")
    vigil = vigil_on_files(tmp_path)

    report = vigil.run_cycle(MODEL, T0)

    assert not report.blind, report.blind
    (drift,) = [f for f in report.findings if f.kind == FindingKind.FEATURE_DRIFT]
    assert drift.evidence["n_current"] == n


@pytest.mark.parametrize("name", ["b.parquet", "b.csv"])
def test_a_damaged_sample_file_is_named_not_an_internal_error(tmp_path, name):
    rng = np.random.default_rng(11)
    write_reference(tmp_path, rng)
    n = 400
    good = pd.DataFrame({"timestamp": T0 - 600 + np.arange(n, dtype=float), "user_age": rng.normal(40, 10, n),
                         "score": rng.uniform(0, 1, n)})
    good.to_parquet(tmp_path / "samples" / "a.parquet")
    # A writer still copying the next file in (or one that died half way): the first bytes only.
    blob = good.to_parquet() if name.endswith(".parquet") else b'timestamp,user_age,score\n1,"2\n'
    (tmp_path / "samples" / name).write_bytes(blob[: len(blob) // 2] if name.endswith(".parquet") else blob)
    vigil = vigil_on_files(tmp_path)

    report = vigil.run_cycle(MODEL, T0)

    (gap,) = [f for f in report.findings if f.kind == FindingKind.NO_DATA]
    assert gap.entity == "samples" and name in gap.message and "internal error" not in gap.message, gap.message


def test_a_feature_sent_under_another_case_is_pointed_at_in_the_missing_column_finding():
    rng = np.random.default_rng(12)
    report = _assess(pd.DataFrame({"x": rng.normal(size=2000)}), pd.DataFrame({" X": rng.normal(size=2000)}), "psi")
    (f,) = report.findings
    assert f.statistic == "column_missing" and "' X'" in f.message, f.message


def test_a_sample_file_whose_times_are_booleans_is_named_not_dated_1970(tmp_path):
    # A writer that put a flag where the time goes: pandas counts booleans as numbers, so
    # each row was dated 1 s after 1970, outside every window: the file was never read, and
    # its rows went missing without a word (the check that names booleans came too late).
    rng = np.random.default_rng(13)
    write_reference(tmp_path, rng)
    n = 400
    pd.DataFrame({"timestamp": T0 - 600 + np.arange(n, dtype=float), "user_age": rng.normal(40, 10, n),
                  "score": rng.uniform(0, 1, n)}).to_parquet(tmp_path / "samples" / "a.parquet")
    pd.DataFrame({"timestamp": [True] * n, "user_age": rng.normal(40, 10, n),
                  "score": rng.uniform(0, 1, n)}).to_parquet(tmp_path / "samples" / "b.parquet")
    vigil = vigil_on_files(tmp_path)

    report = vigil.run_cycle(MODEL, T0)

    (gap,) = [f for f in report.findings if f.kind == FindingKind.NO_DATA]
    assert "b.parquet" in gap.message and "got booleans" in gap.message, gap.message


@pytest.mark.parametrize("name", ["b.parquet", "b.csv"])
def test_a_sample_file_without_any_time_is_named_not_skipped_in_silence(tmp_path, name):
    # A writer that stopped filling the time column: each row was skipped (a log line), so the
    # file's rows went missing from every window without a finding.
    rng = np.random.default_rng(14)
    write_reference(tmp_path, rng)
    n = 400
    pd.DataFrame({"timestamp": T0 - 600 + np.arange(n, dtype=float), "user_age": rng.normal(40, 10, n),
                  "score": rng.uniform(0, 1, n)}).to_parquet(tmp_path / "samples" / "a.parquet")
    blank = pd.DataFrame({"timestamp": [None] * n, "user_age": rng.normal(40, 10, n), "score": rng.uniform(0, 1, n)})
    if name.endswith(".csv"):
        blank.to_csv(tmp_path / "samples" / name, index=False)
    else:
        blank.to_parquet(tmp_path / "samples" / name)
    vigil = vigil_on_files(tmp_path)

    report = vigil.run_cycle(MODEL, T0)

    (gap,) = [f for f in report.findings if f.kind == FindingKind.NO_DATA]
    assert name in gap.message and "no row has a time" in gap.message, gap.message
