"""Drift engine: exact two-sample statistics over sorted columns, verdicts on effect sizes.

    detector = DriftDetector(DriftParams(features=(FeatureSpec("age"), FeatureSpec("city", "categorical")),
                                         statistic="psi", threshold=0.1, min_samples=100, model="ranker"))
    profile = detector.fit(reference_df, t0, t1)       # a ReferenceProfile
    blob = profile.to_bytes()                           # store once per model version (or to_dict())
    report = detector.assess(ReferenceProfile.from_bytes(blob), current_df, t0, t1)
    report.findings, report.features                   # findings; every feature's statistics
"""
from detectors.drift.compare import FeatureDrift, compare
from detectors.drift.decision import DriftDetector, DriftParams, DriftReport, benjamini_hochberg
from detectors.drift.modes import profile_reference
from detectors.drift.profile import FeatureSpec, ReferenceProfile
from detectors.drift.quality import QualityThresholds
from detectors.drift.report import render_drift_report
from detectors.drift.sketch import merge_profiles, sketch_profile

__all__ = [
    "DriftDetector",
    "DriftParams",
    "DriftReport",
    "FeatureDrift",
    "FeatureSpec",
    "QualityThresholds",
    "ReferenceProfile",
    "benjamini_hochberg",
    "compare",
    "merge_profiles",
    "profile_reference",
    "render_drift_report",
    "sketch_profile",
]
