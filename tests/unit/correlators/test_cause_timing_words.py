"""A cause's explanation must say the order of events as the data has it: a deploy inside
the onset's slack but after the onset, or GPU saturation that began after the serving
symptoms, must not be told as having come first."""
from __future__ import annotations

from correlators.causes import CorrelationSettings, build_incident
from correlators.incident import CauseKind
from detectors.records import DeployEvent, Finding, FindingKind

T = 1_800_000_000.0  # 2027-01-15 08:00 UTC


def f(kind, entity, value=1.0, threshold=0.5, onset=T - 600, statistic="s"):
    return Finding(kind=kind, entity=entity, value=value, threshold=threshold, window_start=T - 1800,
                   window_end=T, onset=onset, model="m", statistic=statistic, score=0.8)


def build(findings, deploys=()):
    return build_incident("m", findings, list(deploys), window_start=T - 1800, window_end=T,
                          settings=CorrelationSettings(deploy_window=7200))


def test_a_deploy_four_minutes_after_onset_is_not_told_as_before_it():
    # onset T-600; the poll saw the move at T-360 (inside the 5-minute slack): still a suspect
    inc = build([f(FindingKind.KPI_DROP, "ctr", -12, -5)],
                [DeployEvent("m", "champion", "2", "1", T - 360, "registry")])
    cause = next(c for c in inc.causes if c.kind == CauseKind.DEPLOY)
    assert "4 min after onset" in cause.explanation, cause.explanation
    assert "before onset" not in cause.explanation
    assert cause.evidence.get("minutes_after_onset") == 4.0
    assert "minutes_before_onset" not in cause.evidence


def test_a_deploy_before_onset_still_says_before():
    inc = build([f(FindingKind.KPI_DROP, "ctr", -12, -5)],
                [DeployEvent("m", "champion", "2", "1", T - 900, "registry")])
    cause = next(c for c in inc.causes if c.kind == CauseKind.DEPLOY)
    assert "5 min before onset" in cause.explanation
    assert cause.evidence["minutes_before_onset"] == 5.0


def test_saturation_that_began_after_the_serving_symptoms_is_not_told_as_before_them():
    # latency from 07:50, the GPU saturated from 07:51 (within the 60 s the score allows)
    findings = [f(FindingKind.SLO_BREACH, "p99", 0.9, 0.5, onset=T - 600),
                f(FindingKind.GPU_SATURATION, "gpu0", 99, 95, onset=T - 540, statistic="gpu_util_pct")]
    cause = next(c for c in build(findings).causes if c.kind == CauseKind.GPU_SATURATION)
    assert "before the serving symptoms" not in cause.explanation, cause.explanation
    assert "07:51 UTC" in cause.explanation and "07:50 UTC" in cause.explanation


def test_a_long_saturation_says_one_start_in_its_explanation_and_its_evidence():
    """The detector sees one lookback window at a time: after an hour at 99 % the latest
    finding's run starts at the window's start, while the incident's story (merged findings)
    knows the saturation began an hour ago. Evidence 'from' must not contradict 'began at'."""
    from dataclasses import replace

    from correlators.causes import merge_findings

    def gpu(onset):
        g = f(FindingKind.GPU_SATURATION, "gpu0", 99, 95, onset=onset, statistic="gpu_util_pct")
        return replace(g, evidence={"saturated_from": onset, "saturated_until": T, "minutes": (T - onset) / 60})

    slo = f(FindingKind.SLO_BREACH, "p99", 0.9, 0.5, onset=T - 3500)
    story = merge_findings([gpu(T - 3600), slo], [gpu(T - 1800), slo])
    cause = next(c for c in build(story).causes if c.kind == CauseKind.GPU_SATURATION)
    assert "began at 2027-01-15 07:00 UTC" in cause.explanation
    assert cause.evidence["signals"]["gpu0:gpu_util_pct"]["from"] == T - 3600, cause.evidence
