"""A serving side that posts a key per request as a column (`{"req_8f3a...": 1}`): each batch
is accepted (other columns are kept), but the window's frame had one column per request.
200 such rows took a cycle 30 s and 800 MB; 500 rows (a 7 MB batch) 108 s and 4 GB, every
cycle while they stayed in the window. The model's own columns and the first 1,000 others
are read; the drift is still judged."""
from __future__ import annotations

import time

import numpy as np
import pandas as pd

from detectors.records import FindingKind
from monitor.sources.posted_samples import MAX_OTHER_COLUMNS
from tests.helpers_vigil import MODEL, T0, StubPrometheus, make_config, make_vigil, model_config, serving_registry
from tests.unit.monitor.test_api import Api


def test_rows_posted_with_a_column_per_request_are_read_bounded_and_judged(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    pd.DataFrame({"user_age": rng.normal(40, 10, 3000)}).to_parquet(tmp_path / "train.parquet")
    monkeypatch.setenv("VIGIL_TEST_TOKEN", "t0ken-for-tests")
    cfg = make_config(tmp_path, api={"token": "${VIGIL_TEST_TOKEN}"}, models=[model_config(
        kpis=[], slos=[], features=["user_age"], reference={"path": "train.parquet"})])
    vigil = make_vigil(cfg, prometheus=StubPrometheus(), registry=serving_registry(), notifiers={})
    api = Api(vigil, vigil.registry)
    records = [{"timestamp": T0 - 600 + i, "user_age": float(v), **{f"req_{i}_{j}": 1 for j in range(1000)}}
               for i, v in enumerate(rng.normal(60, 10, 200))]  # drifted: 40 -> 60
    r = api.client.post("/v1/samples", json={"model": MODEL, "records": records},
                        headers={"Authorization": "Bearer t0ken-for-tests"})
    assert r.status_code == 202, r.text

    frame = vigil.gather_sources.samples.window(vigil.config.models[0], T0 - 1800, T0)
    vigil.drift_reports.background = True  # as in the daemon: Evidently's report is rendered off the cycle
    began = time.perf_counter()
    report = vigil.run_cycle(MODEL, T0)
    took = time.perf_counter() - began

    assert len(frame.columns) <= 2 + MAX_OTHER_COLUMNS + 1  # user_age, timestamp, the others, _ts
    assert "user_age" in frame.columns
    assert (FindingKind.FEATURE_DRIFT, "user_age") in {(f.kind, f.entity) for f in report.findings}
    assert took < 10, f"a cycle over 200 rows took {took:.0f} s"
