"""Drift of one model's production samples against its chosen reference profile."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from detectors.drift import DriftDetector, DriftParams, FeatureSpec
from detectors.drift.columns import missing_categories, to_floats
from detectors.drift_onset import categorical_surprise, estimate_onset, numeric_bins_position
from detectors.records import Finding, FindingKind
from monitor.config import ModelConfig, PolicyConfig
from monitor.types import Window

EXPORTED_STATISTICS = ("psi", "ks", "wasserstein", "js", "chi2")  # what vigil_feature_drift carries


@dataclass
class SampleDrift:
    findings: list[Finding] = field(default_factory=list)
    statistics: list[tuple[str, str, float]] = field(default_factory=list)  # (feature, statistic, value)
    columns: list[str] = field(default_factory=list)
    blind: list[str] = field(default_factory=list)


def feature_specs(m: ModelConfig) -> list[FeatureSpec]:
    """Each watched column once, with its configured type. The prediction column is often
    listed among the features too (a classifier's class, as a category): appended again as
    numeric, it was judged twice (two findings), its text read as "not a number" (blind),
    and the stored profile held it under two types and could not be read back."""
    specs: dict[str, FeatureSpec] = {}
    for f in m.features:
        specs.setdefault(f.name, FeatureSpec(f.name, f.type))
    if m.prediction_column:
        specs.setdefault(m.prediction_column, FeatureSpec(m.prediction_column, "numeric"))
    return list(specs.values())


def detect_sample_drift(current: pd.DataFrame, profile: Any, m: ModelConfig, policy: PolicyConfig,
                        w: Window, reference: str | None = None) -> SampleDrift:
    """`reference`: what the profile was made of, as ReferenceChooser.choose names it."""
    report = DriftDetector(DriftParams(statistic=policy.drift_statistic, threshold=policy.drift_warning,
                                       min_samples=policy.min_samples, model=m.name,
                                       prediction_column=m.prediction_column)).assess(profile, current, w.start, w.t)
    findings, drifts = report.findings, report.features
    if reference:
        name_reference(findings, reference)
    date_drift(findings, profile, current)
    say_reference_rows(findings, getattr(profile, "rows", ""))
    out = SampleDrift(findings=findings, columns=[s.name for s in feature_specs(m)])
    for d in drifts:
        for stat, value in d.statistics.items():
            if stat in EXPORTED_STATISTICS and value is not None and np.isfinite(value):
                out.statistics.append((d.feature, stat, float(value)))
    out.blind = [blind_line(f) for f in findings if f.kind == FindingKind.NO_DATA]
    return out


def name_reference(findings: list[Finding], source: str) -> None:
    """Say in each finding which reference it was judged against: the training file, or the
    production samples of a rolling reference (`source` as ReferenceChooser.choose names it:
    a file's path, or "rolling 7 d of production samples")."""
    rolling = source.startswith("rolling")
    name = source if rolling else f"training file {Path(source).name}"
    for f in findings:
        f.evidence["reference"] = {"kind": "rolling" if rolling else "training", "source": source, "name": name}
        f.message = f"{f.message}; reference: {name}" if f.message else f"reference: {name}"


def blind_line(f: Finding) -> str:
    """What the model's status says drift could not judge: a feature, or the window's features
    short of rows at once ("drift: not enough data on 50 features (40 rows < 100)")."""
    if not f.statistic.startswith("n_"):
        return f"drift {f.entity}: {f.statistic} not computable"
    count = f.evidence.get("features_not_assessed_count")
    if count:
        return (f"drift: not enough data on {count:,} features ({f.value:,.0f} {f.statistic[2:]} rows "
                f"< {f.threshold:,.0f})")
    return f"drift {f.entity}: not enough data"


def say_reference_rows(findings: list[Finding], rows: str) -> None:
    """Say which of the reference's rows judged the window when time of day was matched
    (monitor/cycle/reference_slices.py): its hours' rows, or the whole reference and why."""
    if not rows:
        return
    against = f"the {rows}" if rows.startswith("whole") else f"the reference's {rows} rows"
    for f in findings:
        if f.kind in (FindingKind.FEATURE_DRIFT, FindingKind.PREDICTION_DRIFT, FindingKind.DATA_QUALITY):
            f.evidence["reference_rows"] = rows
            if f.kind != FindingKind.DATA_QUALITY:
                f.message += f"; against {against}"


def date_drift(findings: list[Finding], profile: Any, current: pd.DataFrame) -> None:
    """Give window-level drift findings an onset inside the window (see detectors/drift_onset.py)."""
    if "_ts" not in current.columns:
        return
    times = current["_ts"].to_numpy(dtype=float)
    cache: dict[str, float | None] = {}
    for f in findings:
        if f.kind not in (FindingKind.FEATURE_DRIFT, FindingKind.PREDICTION_DRIFT, FindingKind.DATA_QUALITY):
            continue
        col = getattr(profile, "columns", {}).get(f.entity)
        if col is None or list(current.columns).count(f.entity) != 1:  # absent, or several of that name
            continue
        if f.entity not in cache:
            cache[f.entity] = _onset(current[f.entity], col, times)
        onset = cache[f.entity]
        if onset is not None:
            f.evidence["onset_estimate"] = "change point of per-row surprise vs the reference"
            f.onset = onset


def _onset(raw: pd.Series, col: Any, times: np.ndarray) -> float | None:
    if hasattr(col, "edges"):
        v = to_floats(raw)  # an integer beyond the float range is inf here, not an OverflowError
        ok = np.isfinite(v)
        u, surprise = numeric_bins_position(v[ok], col.edges, col.edge_counts)
        return estimate_onset(times[ok], [u, surprise])
    ok = ~missing_categories(raw)  # the rows the profile counted, "" missing as there
    return estimate_onset(times[ok], [categorical_surprise(raw[ok].to_numpy(), col.categories,
                                                           col.category_counts)])
