"""Which reference drift is measured against: the version's training reference during
cold start, then (when configured) a rolling window of production samples."""
from __future__ import annotations

import numpy as np
import pandas as pd

from detectors.records import FindingKind
from tests.helpers_vigil import MODEL, T0, StubPrometheus, make_config, make_vigil, model_config, serving_registry

DAY = 86400.0


def write_samples(tmp_path, start: float, end: float, mean: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    ts = np.arange(start, end, 10.0)
    (tmp_path / "samples").mkdir(exist_ok=True)
    pd.DataFrame({"timestamp": ts, "x": rng.normal(mean, 1, len(ts))}).to_parquet(
        tmp_path / "samples" / f"{int(start)}.parquet")


def setup(tmp_path, mode: str, deployed_at: float):
    # Training data centred at 0; production has sat at 1.0 for eight days (a new normal).
    pd.DataFrame({"x": np.random.default_rng(0).normal(0, 1, 5000)}).to_parquet(tmp_path / "train.parquet")
    write_samples(tmp_path, T0 - 8 * DAY, T0 + 60, 1.0, 1)
    cfg = make_config(tmp_path, models=[model_config(
        kpis=[], slos=[], features=["x"], samples={"path": "samples/", "timestamp_column": "timestamp"},
        reference={"path": "train.parquet"})],
        policy={"reference_after_cold_start": mode, "rolling_reference": "7d"})
    registry = serving_registry(registered_at=deployed_at)
    return make_vigil(cfg, prometheus=StubPrometheus(), registry=registry, notifiers={})


def drift(report) -> list:
    return [f for f in report.findings if f.kind == FindingKind.FEATURE_DRIFT]


def test_training_reference_by_default_sees_the_shift(tmp_path):
    vigil = setup(tmp_path, "training", deployed_at=T0 - 30 * DAY)
    (f,) = drift(vigil.run_cycle(MODEL, T0))
    assert f.entity == "x" and f.value > 0.2


def test_rolling_reference_after_cold_start_accepts_the_new_normal(tmp_path):
    vigil = setup(tmp_path, "rolling", deployed_at=T0 - 30 * DAY)
    report = vigil.run_cycle(MODEL, T0)
    assert drift(report) == []
    assert not any(f.kind == FindingKind.NO_DATA for f in report.findings)


def test_cold_start_always_uses_the_training_reference(tmp_path):
    vigil = setup(tmp_path, "rolling", deployed_at=T0 - 2 * DAY)
    assert drift(vigil.run_cycle(MODEL, T0))
