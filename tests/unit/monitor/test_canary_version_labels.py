"""Canary distributions split by a numeric version column that has a gap: pandas makes the
column float, and version 2.0 is the challenger "2", not an unknown version."""
from __future__ import annotations

import numpy as np
import pandas as pd

from monitor.types import Window
from tests.helpers_vigil import MODEL, T0, make_config, make_vigil, model_config, serving_registry
from tests.unit.monitor.test_canary_cycle import prometheus


def test_a_numeric_version_column_with_one_missing_value_still_splits_by_version(tmp_path):
    cfg = make_config(tmp_path, models=[model_config(
        features=["age"], prediction_column="score",
        canary={"alias": "challenger", "version_column": "model_version", "distribution_threshold": 0.2})])
    registry = serving_registry(versions=("1", "2"))
    registry.aliases[(MODEL, "challenger")] = "2"
    vigil = make_vigil(cfg, prometheus=prometheus(), registry=registry)
    m, policy = cfg.model(MODEL), cfg.policy_for(cfg.model(MODEL))
    r = np.random.default_rng(5)

    def rows(version, n: int, score_shift: float) -> pd.DataFrame:
        return pd.DataFrame({"age": r.normal(40, 10, n), "score": r.beta(2, 5, n) + score_shift,
                             "model_version": version})

    w = Window(t=T0, start=T0 - 1800, baseline_start=T0 - 5400, baseline_end=T0 - 1800)
    # The serving side posts the version as a JSON number (1, 2); one record came without it.
    frame = pd.concat([rows(1, 2000, 0.0), rows(2, 400, 0.3)], ignore_index=True)
    records = [(T0 - 60, {k: (int(v) if k == "model_version" else float(v)) for k, v in rec.items()})
               for rec in frame.to_dict("records")]
    records.append((T0 - 60, {"age": 41.0, "score": 0.3}))  # one record without the version
    from monitor.sources.samples import records_frame
    samples = records_frame(records)  # what SampleReader.window gives for rows posted to the API
    print("dtype", samples["model_version"].dtype, samples["model_version"].astype(str).unique()[:3])
    judged = vigil.canary.judge(m, w, policy, samples)
    assert judged is not None
    by_metric = {v.metric: v for v in judged.verdict.metrics if v.kind == "distribution"}
    print({k: (v.verdict, v.reason) for k, v in by_metric.items()})
    assert by_metric["score"].verdict == "fail", by_metric["score"].reason
