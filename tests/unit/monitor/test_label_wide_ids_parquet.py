"""64-bit prediction ids (Snowflake-style, ~1.2e18) in a parquet sample file whose id column
has a gap: pandas made the column float, ids 256 apart became one, and their labels joined
the wrong prediction or none (a CSV file was read right: monitor/sources/table_files.py)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.metrics import accuracy_score

from tests.helpers_vigil import T0, make_config, make_vigil, model_config

H = 3600.0
BASE = 2**60  # a Snowflake-style id


def _vigil(tmp_path: Path, spool: bool):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(7)
    n = 1200
    ts = T0 - 3 * 86400 + np.arange(n) * (4 * 86400 / n)  # the reference day, then up to T0
    pred = rng.integers(0, 2, n)
    truth = np.where(rng.random(n) < 0.8, pred, 1 - pred)
    ids = [BASE + i for i in range(n)]
    (tmp_path / "samples").mkdir()
    (tmp_path / "labels").mkdir()
    # Written as Spark or pyarrow write it (no pandas metadata); one row of each day logged without an id
    pq.write_table(pa.table({"timestamp": ts, "prediction_id": pa.array([None if i % 300 == 10 else x
                                                                         for i, x in enumerate(ids)], pa.int64()),
                             "churn_pred": pred, "model_version": ["1"] * n}),
                   tmp_path / "samples" / "predictions.parquet")
    pd.DataFrame({"prediction_id": np.array(ids, dtype=np.int64), "label": truth, "timestamp": ts + 600}).to_parquet(
        tmp_path / "labels" / "labels.parquet", index=False)
    performance = {"task": "classification", "prediction_column": "churn_pred", "window": "1d", "horizon": "2d",
                   "min_labels": 100, "labels": {"path": "labels"},
                   "reference": {"start": T0 - 3 * 86400, "end": T0 - 2 * 86400}}
    m = model_config("churn", kpis=[], slos=[], samples={"path": "samples"}, performance=performance)
    vigil = make_vigil(make_config(tmp_path, models=[m], spool={"enabled": spool}))
    return vigil, pd.DataFrame({"ts": ts, "pred": pred, "truth": truth})


@pytest.mark.parametrize("spool", [True, False])
def test_wide_ids_in_parquet_samples_with_a_gap_join_their_own_labels(tmp_path: Path, spool: bool) -> None:
    vigil, rows = _vigil(tmp_path, spool)
    vigil.run_cycle("churn", T0)
    report = vigil.store.labels.report("churn")
    [day] = [w for w in report["windows"] if w["start"] == T0 - 8 * H - 86400]  # a whole UTC day
    mine = rows[(rows["ts"] >= day["start"]) & (rows["ts"] < day["end"])]
    assert day["predictions"] == len(mine) - 1 == 299 and day["coverage"] == 1.0
    mine = mine[(np.arange(len(rows)) % 300 != 10)[mine.index]]
    assert day["realised"]["accuracy"] == accuracy_score(mine["truth"], mine["pred"])
