"""Which files a samples path reads: a glob over a Spark/Hadoop output also matches its
markers (`_SUCCESS`, `.crc`) and partition directories."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from monitor.sources.samples import SampleFiles
from monitor.sources.table_files import SampleFileError


def spark_output(root: Path) -> None:
    for day, t in (("date=2026-12-05", 1.0), ("date=2026-12-06", 2.0)):
        (root / day).mkdir(parents=True)
        pd.DataFrame({"timestamp": [t, t + 0.5], "x": [1.0, 2.0]}).to_parquet(root / day / "part-00000.parquet")
        (root / day / "_SUCCESS").touch()
        (root / day / "part-00000.parquet.crc").write_bytes(b"crc")
    (root / "_SUCCESS").touch()


@pytest.mark.parametrize("pattern", ["*/*", "*"])
def test_a_glob_over_spark_output_reads_its_tables_and_skips_its_markers(tmp_path: Path, pattern: str) -> None:
    """`samples.path: /data/preds/*/*` matched `_SUCCESS` and the `.crc` files too, and the
    first of them made the whole window 'expected a .parquet or .csv file': the model's
    drift was blind for good, though every table was there."""
    spark_output(tmp_path / "out")
    if pattern == "*":  # the partition directories themselves matched: each skipped, not an error
        files = SampleFiles(str(tmp_path / "out" / "date=*"), "timestamp")
        with pytest.raises(SampleFileError, match="no .parquet, .pq, .csv or .txt file"):
            files.window(0, 10)
        return
    window = SampleFiles(str(tmp_path / "out" / pattern), "timestamp").window(0, 10)
    assert window["timestamp"].tolist() == [1.0, 1.5, 2.0, 2.5]


def test_a_file_still_being_written_is_named_and_the_other_files_are_judged(tmp_path: Path) -> None:
    """A streaming writer keeps this hour's parquet open (its footer comes at close): for the
    whole hour every cycle said only 'samples: ... cannot be read', and the drift the other
    files plainly showed went unjudged. Now the window is judged on the readable files and
    the unreadable one is named next to the verdict (the cycle still counts as blind)."""
    import numpy as np

    from detectors.records import FindingKind
    from tests.helpers_vigil import MODEL, T0, StubPrometheus, make_config, make_vigil, model_config, serving_registry

    rng = np.random.default_rng(6)
    pd.DataFrame({"x": rng.normal(0, 1, 3000)}).to_parquet(tmp_path / "train.parquet")
    (tmp_path / "samples").mkdir()
    n = 600
    pd.DataFrame({"timestamp": T0 - 900 + np.arange(n, dtype=float), "x": rng.normal(2, 1, n)}).to_parquet(
        tmp_path / "samples" / "a.parquet")
    pd.DataFrame({"timestamp": T0 - 200 + np.arange(100, dtype=float), "x": rng.normal(2, 1, 100)}).to_parquet(
        tmp_path / "b.parquet")
    whole = (tmp_path / "b.parquet").read_bytes()
    (tmp_path / "samples" / "b.parquet").write_bytes(whole[: len(whole) // 2])  # no footer yet
    cfg = make_config(tmp_path, models=[model_config(
        kpis=[], slos=[], features=["x"], reference={"path": "train.parquet"},
        samples={"path": "samples/", "timestamp_column": "timestamp"})])
    vigil = make_vigil(cfg, prometheus=StubPrometheus(), registry=serving_registry(), notifiers={})

    report = vigil.run_cycle(MODEL, T0)

    (drift,) = [f for f in report.findings if f.kind == FindingKind.FEATURE_DRIFT]
    assert drift.entity == "x" and drift.evidence["n_current"] == n
    (gap,) = [f for f in report.findings if f.kind == FindingKind.NO_DATA and f.entity == "samples"]
    assert "b.parquet" in gap.message and report.blind, (gap.message, report.blind)


def test_a_samples_folder_of_partition_directories_says_to_glob_them(tmp_path: Path) -> None:
    """`samples.path: /data/preds/` over Spark's `date=.../part-*.parquet` read the folder's own
    files only: none, and every cycle said 'no feature samples in the window' while a day of
    samples sat one level down. It now says where they are and how to read them."""
    spark_output(tmp_path / "out")
    with pytest.raises(SampleFileError, match=r"date=2026-12-05.*\*/\*\.parquet"):
        SampleFiles(tmp_path / "out", "timestamp").window(0, 10)
