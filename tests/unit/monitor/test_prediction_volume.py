"""`vigil_samples_total`, the model dashboard's "Prediction volume" (rows/s as
`rate(vigil_samples_total[...])`): each production row counts once.

Every cycle added the length of its whole window (30 minutes of rows, read again each
minute), and an API-posted row was counted at ingest too: a model serving 1 row/s showed
about 30 rows/s."""
from __future__ import annotations

import numpy as np
import pandas as pd

from tests.helpers_vigil import MODEL, T0, StubPrometheus, make_config, make_vigil, model_config, serving_registry


def samples_total(vigil) -> float:  # type: ignore[no-untyped-def]
    return vigil.metrics.registry.get_sample_value("vigil_samples_total", {"model": MODEL}) or 0.0


def test_each_row_counts_once_however_many_windows_hold_it(tmp_path):
    rng = np.random.default_rng(1)
    pd.DataFrame({"user_age": rng.normal(40, 10, 3000), "score": rng.uniform(0, 1, 3000)}).to_parquet(
        tmp_path / "train.parquet")
    (tmp_path / "samples").mkdir()
    ts = np.arange(T0 - 3600, T0 + 601, 1.0)  # one row a second, from an hour before the first cycle
    pd.DataFrame({"timestamp": ts, "user_age": rng.normal(40, 10, len(ts)),
                  "score": rng.uniform(0, 1, len(ts))}).to_parquet(tmp_path / "samples" / "a.parquet")
    cfg = make_config(tmp_path, models=[model_config(
        kpis=[], slos=[], features=["user_age"], prediction_column="score", reference={"path": "train.parquet"},
        samples={"path": "samples/", "timestamp_column": "timestamp"})])
    vigil = make_vigil(cfg, prometheus=StubPrometheus(), registry=serving_registry(), notifiers={})
    for i in range(11):  # T0 .. T0 + 600, one a minute
        vigil.run_cycle(MODEL, T0 + 60 * i)
    # The first cycle counts its own interval, every later one the rows since the one before:
    # the rows of (T0 - 60, T0 + 600], at 1 row/s.
    assert samples_total(vigil) == 660


def test_a_posted_row_counts_once_not_at_ingest_and_again_in_the_cycle(tmp_path, monkeypatch):
    from tests.unit.monitor.test_api import samples_api

    api = samples_api(tmp_path, monkeypatch)
    records = [{"timestamp": T0 - 30, "user_age": 31, "device": "ios", "score": 0.4},
               {"timestamp": T0, "user_age": 40, "device": "web", "score": 0.7}]
    assert api.post("/v1/samples", {"model": MODEL, "records": records}).status_code == 202
    api.vigil.run_cycle(MODEL, T0)
    api.vigil.run_cycle(MODEL, T0 + 60)
    assert samples_total(api.vigil) == 2
