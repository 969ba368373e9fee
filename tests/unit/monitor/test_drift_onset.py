"""When a sample drift began inside the window (monitor/cycle/detect_drift.date_drift)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from detectors.drift import DriftDetector, DriftParams, FeatureSpec
from detectors.records import FindingKind
from monitor.cycle.detect_drift import date_drift

T0 = 1_800_000_000.0


def test_categorical_onset_is_found_when_an_integer_category_column_turned_float() -> None:
    """Zone ids (integers in the reference) arrive as floats once a value is missing; the
    onset must still be read from the categories (3.0 is category "3"), not fall back to
    the window start because every row looked unseen."""
    rng = np.random.default_rng(5)
    ref = pd.DataFrame({"zone": rng.integers(0, 10, 5000)})
    zone = np.concatenate([rng.integers(0, 10, 1000), np.zeros(1000, dtype=np.int64)]).astype(float)
    zone[3] = np.nan
    times = T0 + np.arange(2000.0)
    cur = pd.DataFrame({"zone": zone, "_ts": times})
    det = DriftDetector(DriftParams(features=(FeatureSpec("zone", "categorical"),), model="m"))
    profile = det.fit(ref)
    findings = det.score(profile, cur, T0, T0 + 2000)
    (f,) = [f for f in findings if f.kind == FindingKind.FEATURE_DRIFT]
    date_drift(findings, profile, cur)
    assert abs(f.onset - (T0 + 1000)) <= 20, f.onset - T0
