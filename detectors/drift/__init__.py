"""Drift engine: exact two-sample statistics over sorted columns, verdicts on effect sizes.

    profile = profile_reference(reference_df, [FeatureSpec("age"), FeatureSpec("city", "categorical")])
    blob = profile.to_bytes()                     # store once per model version
    findings, drifts = detect_drift(ReferenceProfile.from_bytes(blob), current_df,
                                    statistic="psi", threshold=0.1, min_samples=100,
                                    model="ranker", window_start=t0, window_end=t1)
"""
from detectors.drift.compare import FeatureDrift, compare
from detectors.drift.decision import benjamini_hochberg, detect_drift
from detectors.drift.profile import FeatureSpec, ReferenceProfile, profile_reference
from detectors.drift.quality import QualityThresholds
from detectors.drift.report import render_drift_report
from detectors.drift.sketch import merge_profiles, sketch_profile

__all__ = [
    "FeatureDrift",
    "FeatureSpec",
    "QualityThresholds",
    "ReferenceProfile",
    "benjamini_hochberg",
    "compare",
    "detect_drift",
    "merge_profiles",
    "profile_reference",
    "render_drift_report",
    "sketch_profile",
]
