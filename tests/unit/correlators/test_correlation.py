"""Incidents from findings: deploy, GPU and upstream-drift suspects, ranked with evidence."""
from __future__ import annotations

import pytest

from correlators.causes import CorrelationSettings, build_incident, merge_findings, released_into
from correlators.incident import CauseKind
from detectors.records import DeployEvent, Finding, FindingKind

T = 1_800_000_000.0


def f(kind, entity, value=1.0, threshold=0.5, onset=T - 600, statistic="s", **kw):
    return Finding(kind=kind, entity=entity, value=value, threshold=threshold, window_start=T - 1800,
                   window_end=T, onset=onset, model="m", statistic=statistic, score=0.8, **kw)


def dep(at, version="2", prev="1", source="registry", model="m"):
    return DeployEvent(model, "champion", version, prev, at, source)


def build(findings, deploys=()):
    return build_incident("m", findings, list(deploys), window_start=T - 1800, window_end=T,
                          settings=CorrelationSettings(deploy_window=7200))


def test_no_findings_no_incident():
    assert build([]) is None


def test_recent_deploy_with_prediction_drift_and_kpi_drop_is_top_cause():
    inc = build([f(FindingKind.PREDICTION_DRIFT, "score"), f(FindingKind.KPI_DROP, "ctr", -12, -5)],
                [dep(T - 900)])
    top = inc.top_cause
    assert top.kind == CauseKind.DEPLOY and top.score >= 0.8
    assert top.evidence["previous_version"] == "1"
    assert "v2" in top.explanation and "5 min before onset" in top.explanation
    assert inc.onset == T - 600


def test_deploy_long_before_onset_is_not_a_suspect():
    inc = build([f(FindingKind.KPI_DROP, "ctr", -12, -5)], [dep(T - 600 - 3 * 3600)])
    assert all(c.kind != CauseKind.DEPLOY for c in inc.causes)


def test_deploy_after_onset_is_not_a_suspect():
    inc = build([f(FindingKind.KPI_DROP, "ctr", -12, -5, onset=T - 1500)], [dep(T - 300)])
    assert all(c.kind != CauseKind.DEPLOY for c in inc.causes)


def test_rollback_is_never_a_suspect():
    inc = build([f(FindingKind.KPI_DROP, "ctr", -12, -5)], [dep(T - 700, "1", "2", source="rollback")])
    assert all(c.kind != CauseKind.DEPLOY for c in inc.causes)


def test_gpu_saturation_that_started_first_explains_latency_better_than_a_deploy():
    findings = [f(FindingKind.SLO_BREACH, "p99", 0.9, 0.5, onset=T - 500),
                f(FindingKind.GPU_SATURATION, "gpu0", 99, 95, onset=T - 560, statistic="gpu_util_pct")]
    inc = build(findings, [dep(T - 3000)])
    assert inc.top_cause.kind == CauseKind.GPU_SATURATION
    assert inc.top_cause.score > next(c.score for c in inc.causes if c.kind == CauseKind.DEPLOY)
    assert "before the serving symptoms" in inc.top_cause.explanation


def test_feature_drift_without_deploy_is_upstream():
    inc = build([f(FindingKind.FEATURE_DRIFT, "session_length", 0.6, 0.1),
                 f(FindingKind.FEATURE_DRIFT, "age", 0.12, 0.1)])
    top = inc.top_cause
    assert top.kind == CauseKind.UPSTREAM_DRIFT
    assert top.entity.startswith("session_length")  # the biggest mover first
    assert "no deploy" in top.explanation


def test_causes_are_ranked_best_first():
    inc = build([f(FindingKind.FEATURE_DRIFT, "x", 0.6, 0.1), f(FindingKind.KPI_DROP, "ctr", -9, -5)],
                [dep(T - 900)])
    scores = [c.score for c in inc.causes]
    assert scores == sorted(scores, reverse=True)


def test_merge_keeps_recovered_signals_and_the_first_onset():
    early = [f(FindingKind.KPI_DROP, "ctr", -12, -5, onset=T - 1200), f(FindingKind.GPU_SATURATION, "g", onset=T - 900)]
    late = [f(FindingKind.GPU_SATURATION, "g", 97, onset=T - 300)]
    merged = {(x.kind, x.entity): x for x in merge_findings(early, late)}
    assert merged[(FindingKind.KPI_DROP, "ctr")].value == -12  # recovered, still part of the story
    assert merged[(FindingKind.GPU_SATURATION, "g")].value == 97  # latest value
    assert merged[(FindingKind.GPU_SATURATION, "g")].onset == T - 900  # but it started earlier


def test_deploy_replaced_before_onset_is_not_a_suspect():
    # v2 went out, was rolled back; an hour later inputs drift: v2 is not serving any more.
    deploys = [dep(T - 4000), dep(T - 3700, "1", "2", source="rollback")]
    inc = build([f(FindingKind.FEATURE_DRIFT, "x", 0.6, 0.1, onset=T - 600)], deploys)
    assert inc.top_cause.kind == CauseKind.UPSTREAM_DRIFT
    assert all(c.kind != CauseKind.DEPLOY for c in inc.causes)


def test_rollback_after_onset_does_not_clear_the_deploy_it_undid():
    deploys = [dep(T - 900), dep(T - 300, "1", "2", source="rollback")]
    inc = build([f(FindingKind.KPI_DROP, "ctr", -12, -5, onset=T - 800)], deploys)
    assert inc.top_cause.kind == CauseKind.DEPLOY and inc.top_cause.entity == "m v2"


def test_a_move_made_while_the_incident_was_open_answers_it_and_is_never_its_cause():
    # Onset T-600; a person reverted to v1 at T-420 (inside the onset's 5-min slack).
    kpi = [f(FindingKind.KPI_DROP, "ctr", -12, -5)]
    assert build(kpi, [dep(T - 900), dep(T - 420, version="1", prev="2")]).top_cause.deploy.version == "1"
    # The poll knew the revert came while the incident was open (a poll after the opening still read v2):
    inc = build(kpi, [dep(T - 900), dep(T - 420, version="1", prev="2", source="response")])
    assert [c.deploy.version for c in inc.causes if c.deploy] == ["2"]


def test_a_deploy_window_must_be_positive():
    with pytest.raises(ValueError, match="deploy_window: expected seconds > 0"):
        CorrelationSettings(deploy_window=0)


@pytest.mark.parametrize(("measured_on", "blamed"), [("3", False), ("v3", False), ("2", True), ("v2", True),
                                                     ("model-2", True), ("unknown", True), ("v02", True),
                                                     ("v12", False), ("1.3.2", False), ("2.4.1", False)])
def test_a_performance_drop_blames_only_a_deploy_of_the_version_it_was_measured_on(measured_on, blamed):
    """The version a drop was measured on is the samples' (the registry's "2", or a label
    value such as "v2", "v02"): a challenger's (v3) drop is no reason to roll the champion (v2)
    back. A label with several numbers ("1.3.2", a package's own version) cannot say which is
    the registry's: every one of them matched, so v2's deploy was blamed, and rolled back, for
    a drop measured on rows labelled 1.3.2."""
    drop = f(FindingKind.PERFORMANCE_DROP, "accuracy", -40, -10, evidence={"version": measured_on})
    inc = build([drop], [dep(T - 900)])
    assert any(c.kind == CauseKind.DEPLOY for c in inc.causes) == blamed


@pytest.mark.parametrize(("measured_on", "blamed"), [("resnet50-v2", True), ("resnet50-v3", False), ("2", True),
                                                     ("resnet50-v02", False), ("bert2-v2", False),
                                                     ("unknown", True)])
def test_with_a_version_value_a_label_names_the_version_it_renders_and_no_other(measured_on, blamed):
    """`performance.version_value: "resnet50-v{version}"`: "resnet50-v2" (two numbers, so
    naming no version without it) is v2's, exactly as written; a label it renders for no
    version is another version's rows."""
    drop = f(FindingKind.PERFORMANCE_DROP, "accuracy", -40, -10,
             evidence={"version": measured_on, "version_value": "resnet50-v{version}"})
    inc = build([drop], [dep(T - 900)])
    assert any(c.kind == CauseKind.DEPLOY for c in inc.causes) == blamed


def test_a_deploy_after_the_incident_began_is_the_suspect_of_the_kpi_drop_that_began_after_it():
    """A drift warning open for days (onset T - 3 days); v2 at T - 900, CTR down from T - 600.
    Dated from the incident's onset alone, v2 came days after it and was no suspect."""
    findings = [f(FindingKind.FEATURE_DRIFT, "user_age", 0.15, 0.1, onset=T - 3 * 86400),
                f(FindingKind.KPI_DROP, "ctr", -12, -5, onset=T - 600)]
    inc = build(findings, [dep(T - 900)])
    top = inc.top_cause
    assert top.kind == CauseKind.DEPLOY and top.entity == "m v2" and top.score >= 0.8, inc.causes
    assert "5 min before onset of the model's own symptoms" in top.explanation, top.explanation
    assert inc.onset == T - 3 * 86400  # the incident still began with the drift


def test_a_deploy_after_a_kpi_drop_began_is_not_its_suspect_however_the_incident_began():
    findings = [f(FindingKind.FEATURE_DRIFT, "user_age", 0.15, 0.1, onset=T - 3 * 86400),
                f(FindingKind.KPI_DROP, "ctr", -12, -5, onset=T - 2 * 86400)]
    inc = build(findings, [dep(T - 900)])
    assert all(c.kind != CauseKind.DEPLOY for c in inc.causes), inc.causes
    # nor a rollback, nor a person's revert made while the incident was open, of what began after it
    later_kpi = [findings[0], f(FindingKind.KPI_DROP, "ctr", -12, -5, onset=T - 600)]
    for move in (dep(T - 900, source="rollback"), dep(T - 900, "1", "2", source="response"),
                 dep(T - 900, "champion-b", "1", source="response")):
        assert all(c.kind != CauseKind.DEPLOY for c in build(later_kpi, [move]).causes), move


def test_a_release_made_while_an_older_incident_was_open_is_the_suspect_of_what_began_after_it():
    """The poll knows v2 was set while the drift incident was open ("response": a person's fix
    forward, or the week's release); CTR fell 5 min after it. A fix forward answers what was
    there before it, not what began after it."""
    findings = [f(FindingKind.FEATURE_DRIFT, "user_age", 0.15, 0.1, onset=T - 3 * 86400),
                f(FindingKind.KPI_DROP, "ctr", -12, -5, onset=T - 600)]
    assert build(findings, [dep(T - 900, source="response")]).top_cause.entity == "m v2"
    # inside the onset's slack, a response may have answered a drop already there: none
    slack = build(findings, [dep(T - 480, source="response")])
    assert all(c.kind != CauseKind.DEPLOY for c in slack.causes), slack.causes


def test_a_release_into_an_open_incident_moves_the_kpi_baseline_before_it_if_nothing_of_the_model_came_first():
    onset, drift = T - 3 * 86400, f(FindingKind.FEATURE_DRIFT, "user_age", 0.15, 0.1, onset=T - 3 * 86400)
    assert released_into("m", onset, [drift], [dep(T - 900)]) == T - 900
    kpi_since = f(FindingKind.KPI_DROP, "ctr", -12, -5, onset=T - 2 * 86400)  # the drift had pulled CTR down
    assert released_into("m", onset, [drift, kpi_since], [dep(T - 900)]) is None
    # v2's drop began after it; v3 came later: still the hour before v2 (v3's would hold v2's drop)
    v2_drop = f(FindingKind.KPI_DROP, "ctr", -12, -5, onset=T - 1200)
    assert released_into("m", onset, [drift, v2_drop], [dep(T - 1500), dep(T - 600, "3", "2")]) == T - 1500
    # Vigil's rollback, a person's revert: no release of their own
    assert released_into("m", onset, [drift], [dep(T - 900, "1", "2", source="rollback")]) is None
    assert released_into("m", onset, [drift], [dep(T - 900, "1", "2", source="response")]) is None


def test_a_deploy_replaced_by_a_fix_forward_is_not_credited_with_what_began_after_it():
    """v2 at T - 1500 and its SLO breach from T - 1200; on-call fixed forward to v3 at T - 800;
    CTR fell from T - 500. v2 was blamed for the breach and, with every finding passed to its
    cause, for the CTR drop too: it could rank first and the page said "after deploy of m v2"
    while v3 served (and the rollback was then refused, "someone moved it since")."""
    findings = [f(FindingKind.SLO_BREACH, "p99", 0.9, 0.5, onset=T - 1200),
                f(FindingKind.KPI_DROP, "ctr", -12, -5, onset=T - 500)]
    inc = build(findings, [dep(T - 1500), dep(T - 800, "3", "2", source="response")])
    v2 = next(c for c in inc.causes if c.entity == "m v2")
    assert "ctr" not in v2.explanation and all(e != "ctr" for e in v2.evidence.get("findings", [])), v2
    assert inc.top_cause.entity == "m v3", [(c.entity, round(c.score, 3)) for c in inc.causes]
