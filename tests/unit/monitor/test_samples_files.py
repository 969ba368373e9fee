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
