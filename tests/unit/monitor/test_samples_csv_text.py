"""CSV samples and references: a column the config declares categorical keeps its text
(zip code "02139" is not the number 2139), numeric features still read as numbers."""
from __future__ import annotations

import numpy as np
import pandas as pd

from monitor.sources.samples import SampleFiles, read_reference
from monitor.sources.spool import Spool
from monitor.sources.table_files import read_table
from tests.helpers_vigil import MODEL, T0, StubPrometheus, make_config, make_vigil, model_config, serving_registry

ZIPS = ["02139", "02140", "10001", "00501"]


def test_csv_reader_keeps_the_text_of_declared_categorical_columns(tmp_path):
    (tmp_path / "s").mkdir()
    pd.DataFrame({"timestamp": T0 + np.arange(4.0), "zip": ZIPS, "age": [30, 40, 50, 60]}).to_csv(
        tmp_path / "s" / "a.csv", index=False)
    for files in (SampleFiles(tmp_path / "s", "timestamp", text_columns={"zip"}),
                  SampleFiles(tmp_path / "s", "timestamp", text_columns={"zip"}, spool=Spool(tmp_path / "sp"))):
        df = files.window(T0, T0 + 10)
        assert df["zip"].tolist() == ZIPS
        assert pd.api.types.is_numeric_dtype(df["age"])  # numeric features are numbers still
    ref = tmp_path / "ref.csv"
    pd.DataFrame({"zip": ZIPS, "age": [1, 2, 3, 4]}).to_csv(ref, index=False)
    df = read_reference(ref, ["zip", "age"], text_columns={"zip"})
    assert df["zip"].tolist() == ZIPS and pd.api.types.is_numeric_dtype(df["age"])


def test_zip_codes_in_csv_samples_match_the_same_zip_codes_in_the_reference(tmp_path):
    rng = np.random.default_rng(0)
    pd.DataFrame({"age": rng.normal(40, 10, 3000), "zip": rng.choice(ZIPS, 3000),
                  "score": rng.uniform(0, 1, 3000)}).to_parquet(tmp_path / "train.parquet")
    (tmp_path / "samples").mkdir()
    n = 600
    pd.DataFrame({"timestamp": T0 - 600 + np.arange(n, dtype=float), "age": rng.normal(40, 10, n),
                  "zip": rng.choice(ZIPS, n), "score": rng.uniform(0, 1, n)}).to_csv(
        tmp_path / "samples" / "a.csv", index=False)
    cfg = make_config(tmp_path, models=[model_config(
        kpis=[], slos=[], features=["age", {"name": "zip", "type": "categorical"}],
        prediction_column="score", reference={"path": "train.parquet"},
        samples={"path": "samples/", "timestamp_column": "timestamp"})])
    vigil = make_vigil(cfg, prometheus=StubPrometheus(), registry=serving_registry(), notifiers={})

    report = vigil.run_cycle(MODEL, T0)

    about_zip = [(f.kind, f.statistic, f.message) for f in report.findings if f.entity == "zip"]
    assert not about_zip, about_zip  # the same zip codes: no drift, no new category


def test_a_profile_stored_before_the_fix_of_a_csv_reference_is_profiled_again(tmp_path):
    import json
    import time

    from detectors.drift import FeatureSpec, profile_reference

    rng = np.random.default_rng(1)
    pd.DataFrame({"age": rng.normal(40, 10, 3000), "zip": rng.choice(ZIPS, 3000),
                  "score": rng.uniform(0, 1, 3000)}).to_csv(tmp_path / "train.csv", index=False)
    (tmp_path / "samples").mkdir()
    n = 600
    pd.DataFrame({"timestamp": T0 - 600 + np.arange(n, dtype=float), "age": rng.normal(40, 10, n),
                  "zip": rng.choice(ZIPS, n), "score": rng.uniform(0, 1, n)}).to_csv(
        tmp_path / "samples" / "a.csv", index=False)
    cfg = make_config(tmp_path, models=[model_config(
        kpis=[], slos=[], features=["age", {"name": "zip", "type": "categorical"}],
        prediction_column="score", reference={"path": "train.csv"},
        samples={"path": "samples/", "timestamp_column": "timestamp"})], spool={"enabled": False})
    vigil = make_vigil(cfg, prometheus=StubPrometheus(), registry=serving_registry(), notifiers={})
    # What the earlier Vigil stored: the zip codes guessed numbers (2139), format 2.
    specs = [FeatureSpec("age"), FeatureSpec("zip", "categorical"), FeatureSpec("score")]
    blob = profile_reference(pd.read_csv(tmp_path / "train.csv"), specs).to_bytes()
    size = int.from_bytes(blob[:8], "little")
    head = json.loads(blob[8:8 + size]) | {"format": 2}
    head_bytes = json.dumps(head).encode()
    old = len(head_bytes).to_bytes(8, "little") + head_bytes + blob[8 + size:]
    path = str(vigil.references.training_path(vigil.config.models[0], "1"))
    vigil.store.save_profile(MODEL, "1", path, old, time.time() + 60)

    report = vigil.run_cycle(MODEL, T0)

    about_zip = [(f.kind, f.statistic, f.message) for f in report.findings if f.entity == "zip"]
    assert not about_zip, about_zip


def test_a_categorical_written_as_plain_numbers_reads_as_before(tmp_path):
    """Text only where a number would lose something: a float-coded class written by
    pandas ("1.0", "2.0") still matches the reference's 1.0 and 2.0; a version "1.10" is
    not the "1.1" next to it."""
    (tmp_path / "s").mkdir()
    pd.DataFrame({"timestamp": T0 + np.arange(4.0), "tier": [1.0, 2.0, np.nan, 1.0],
                  "version": ["1.10", "1.1", "2", "2"]}).to_csv(tmp_path / "s" / "a.csv", index=False)
    df = SampleFiles(tmp_path / "s", "timestamp", text_columns={"tier", "version"}).window(T0, T0 + 10)
    assert df["tier"].dtype == np.float64 and df["tier"].iloc[1] == 2.0
    assert df["version"].tolist() == ["1.10", "1.1", "2", "2"]


def test_a_categorical_code_that_pandas_calls_missing_is_kept(tmp_path):
    # "NA" is Namibia's country code, "None" and "null" are words a category may hold: pandas
    # read them as missing, and a feature's categories fell out of the drift test. A number
    # column keeps pandas' missing values, and an empty cell is missing in both.
    path = tmp_path / "a.csv"
    path.write_text("country,plan,age\nNA,None,NA\nUS,null,41\n,basic,\n")
    df = read_table(path, text_columns={"country", "plan"})
    assert df["country"].tolist()[:2] == ["NA", "US"] and pd.isna(df["country"][2])
    assert df["plan"].tolist() == ["None", "null", "basic"]
    assert pd.api.types.is_numeric_dtype(df["age"]) and df["age"].isna().tolist() == [True, False, True]


def test_a_samples_folder_reads_its_files_whatever_the_case_of_their_suffix(tmp_path):
    (tmp_path / "s").mkdir()
    frame = pd.DataFrame({"timestamp": T0 + np.arange(2.0), "zip": ["02139", "10001"]})
    frame.to_csv(tmp_path / "s" / "PART-0.CSV", index=False)
    frame.assign(timestamp=T0 + 2 + np.arange(2.0)).to_parquet(tmp_path / "s" / "part-1.pq")
    (tmp_path / "s" / "README.txt").write_text("not a table")
    df = SampleFiles(tmp_path / "s", "timestamp", text_columns={"zip"}).window(T0, T0 + 10)
    assert len(df) == 4 and df["zip"].tolist() == ["02139", "10001"] * 2


def test_one_category_spelt_1_0_is_one_category_whichever_file_holds_it(tmp_path):
    # pandas writes a float category as "1.0". In a.csv every value is a plain number (read
    # as numbers: 1.0), in b.csv one is text ("x"): "1.0" stayed text there, and category
    # "1" (a.csv) and "1.0" (b.csv) were counted as two.
    from detectors.drift.columns import count_column_categories

    (tmp_path / "s").mkdir()
    pd.DataFrame({"timestamp": T0 + np.arange(2.0), "code": ["1.0", "2.0"]}).to_csv(
        tmp_path / "s" / "a.csv", index=False)
    pd.DataFrame({"timestamp": T0 + 2 + np.arange(2.0), "code": ["1.0", "x"]}).to_csv(
        tmp_path / "s" / "b.csv", index=False)
    for files in (SampleFiles(tmp_path / "s", "timestamp", text_columns={"code"}),
                  SampleFiles(tmp_path / "s", "timestamp", text_columns={"code"}, spool=Spool(tmp_path / "sp"))):
        labels, counts, _ = count_column_categories(files.window(T0, T0 + 10)["code"])
        assert dict(zip(labels, counts.tolist(), strict=True)) == {"1": 2, "2": 1, "x": 1}


def test_an_empty_category_is_missing_in_parquet_samples_as_in_a_csv_reference(tmp_path):
    """The same pipeline logs an unknown device as "": the training export is a CSV, where that
    is an empty cell (missing, as the README says), production is parquet, where it stayed the
    text "". The window was called drifted (psi 2.8) with "1 new category ''" in a third of the
    rows: nothing had moved but the file format."""
    rng = np.random.default_rng(5)
    devices = ["ios", "android", ""]
    pd.DataFrame({"age": rng.normal(40, 10, 3000), "device": rng.choice(devices, 3000),
                  "score": rng.uniform(0, 1, 3000)}).to_csv(tmp_path / "train.csv", index=False)
    (tmp_path / "samples").mkdir()
    n = 600
    pd.DataFrame({"timestamp": T0 - 600 + np.arange(n, dtype=float), "age": rng.normal(40, 10, n),
                  "device": rng.choice(devices, n), "score": rng.uniform(0, 1, n)}).to_parquet(
        tmp_path / "samples" / "a.parquet")
    cfg = make_config(tmp_path, models=[model_config(
        kpis=[], slos=[], features=["age", {"name": "device", "type": "categorical"}],
        prediction_column="score", reference={"path": "train.csv"},
        samples={"path": "samples/", "timestamp_column": "timestamp"})])
    vigil = make_vigil(cfg, prometheus=StubPrometheus(), registry=serving_registry(), notifiers={})

    report = vigil.run_cycle(MODEL, T0)

    about_device = [(f.kind, f.statistic, f.message) for f in report.findings if f.entity == "device"]
    assert not about_device, about_device


def test_a_boolean_category_spelt_true_in_a_spark_csv_matches_parquet_booleans(tmp_path):
    """Spark writes booleans to CSV as `true`/`false`; read as text (the feature is declared
    categorical), they never matched the parquet samples' True/False: 'psi 17 > 0.10' and '2 new
    categories on is_mobile in 100% of current rows', on the very same traffic."""
    rng = np.random.default_rng(7)
    mobile = rng.random(3000) < 0.3
    rows = "".join(f"{'true' if b else 'false'},{a}\n" for b, a in zip(mobile, rng.normal(40, 10, 3000), strict=True))
    (tmp_path / "train.csv").write_text("is_mobile,age\n" + rows)
    (tmp_path / "samples").mkdir()
    n = 600
    pd.DataFrame({"timestamp": T0 - 600 + np.arange(n, dtype=float), "age": rng.normal(40, 10, n),
                  "is_mobile": rng.random(n) < 0.3}).to_parquet(tmp_path / "samples" / "a.parquet")
    cfg = make_config(tmp_path, models=[model_config(
        kpis=[], slos=[], features=["age", {"name": "is_mobile", "type": "categorical"}],
        reference={"path": "train.csv"}, samples={"path": "samples/", "timestamp_column": "timestamp"})])
    vigil = make_vigil(cfg, prometheus=StubPrometheus(), registry=serving_registry(), notifiers={})

    report = vigil.run_cycle(MODEL, T0)

    about = [(f.kind, f.statistic, f.message) for f in report.findings if f.entity == "is_mobile"]
    assert not about, about
