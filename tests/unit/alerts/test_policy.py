"""Severity tiers, cold start and every rollback guardrail."""
from __future__ import annotations

from alerts.policy import Policy, RollbackGuard, Severity, assign_tier, check_rollback, in_cold_start
from correlators.incident import Cause, CauseKind, Incident
from detectors.records import DeployEvent, Finding, FindingKind

T = 1_800_000_000.0
DAY = 86400.0


def f(kind: FindingKind, entity: str, value: float, threshold: float, **kw) -> Finding:
    return Finding(kind=kind, entity=entity, value=value, threshold=threshold, window_start=T - 1800,
                   window_end=T, onset=kw.pop("onset", T - 600), model="m", statistic=kw.pop("statistic", "psi"), **kw)


def deploy_cause(score: float = 0.9, previous: str | None = "1", model: str = "m") -> Cause:
    d = DeployEvent(model, "champion", "2", previous, T - 900)
    return Cause(CauseKind.DEPLOY, f"{model} v2", score, "deploy", {"previous_version": previous}, d)


def incident(findings, causes=()) -> Incident:
    return Incident("m", T - 1800, T, T - 600, list(findings), list(causes))


POLICY = Policy()
LONG_AGO = T - 30 * DAY


def tier(inc, *, last_deploy=LONG_AGO, streaks=None, policy=POLICY):
    return assign_tier(inc, policy, now=T, last_deploy_at=last_deploy, slo_streaks=streaks or {})


def test_drift_above_warning_is_a_warning():
    d = tier(incident([f(FindingKind.FEATURE_DRIFT, "age", 0.15, 0.1)]))
    assert d.severity == Severity.WARNING
    assert any("0.15 > 0.1" in r for r in d.reasons)


def test_drift_below_warning_alone_is_not_an_alert():
    assert tier(incident([f(FindingKind.FEATURE_DRIFT, "age", 0.08, 0.1)])).severity is None


def test_drift_above_critical_with_kpi_drop_is_critical():
    inc = incident([f(FindingKind.FEATURE_DRIFT, "age", 0.25, 0.1),
                    f(FindingKind.KPI_DROP, "ctr", -6.0, -5.0, statistic="kpi_change_pct")])
    d = tier(inc)
    assert d.severity == Severity.CRITICAL
    assert any("ctr" in r and "-6.0%" in r for r in d.reasons)


def test_drift_above_critical_with_small_kpi_move_stays_warning():
    inc = incident([f(FindingKind.FEATURE_DRIFT, "age", 0.25, 0.1),
                    f(FindingKind.KPI_DROP, "ctr", -4.0, -5.0, statistic="kpi_change_pct")])
    assert tier(inc).severity == Severity.WARNING


def test_a_kpis_own_drop_pct_below_the_policys_is_what_alerts():
    """`kpis[].drop_pct: 2` (vigil.yaml: it overrides policy.kpi_drop_critical_pct) made the
    detector report a 3 % drop, and the policy then dropped the finding against the global
    5 %: no incident, or an open one resolved while the KPI stayed down. The KPI's own limit,
    which its finding carries, now decides."""
    small = f(FindingKind.KPI_DROP, "ctr", -3.0, -2.0, statistic="kpi_change_pct")
    d = tier(incident([small]))
    assert d.severity == Severity.WARNING and any("ctr" in r and "-3.0%" in r for r in d.reasons)
    assert tier(incident([small], [deploy_cause()])).severity == Severity.CRITICAL  # a regression of the deploy
    drift = f(FindingKind.FEATURE_DRIFT, "age", 0.25, 0.1)
    assert tier(incident([drift, small])).severity == Severity.CRITICAL


def test_cold_start_caps_drift_driven_critical_at_warning():
    inc = incident([f(FindingKind.FEATURE_DRIFT, "age", 0.4, 0.1),
                    f(FindingKind.KPI_DROP, "ctr", -8.0, -5.0, statistic="kpi_change_pct")])
    d = tier(inc, last_deploy=T - 2 * DAY)
    assert d.cold_start
    assert d.severity == Severity.WARNING
    assert any("cold start" in r for r in d.reasons)


def test_cold_start_ends_after_seven_days():
    assert in_cold_start(T - 6.9 * DAY, T, POLICY)
    assert not in_cold_start(T - 7.1 * DAY, T, POLICY)
    assert not in_cold_start(None, T, POLICY)


def test_kpi_drop_blamed_on_a_deploy_is_critical_even_in_cold_start():
    inc = incident([f(FindingKind.KPI_DROP, "ctr", -12.0, -5.0, statistic="kpi_change_pct")], [deploy_cause()])
    d = tier(inc, last_deploy=T - 900)
    assert d.cold_start and d.severity == Severity.CRITICAL


def test_slo_breach_pages_only_after_n_consecutive_cycles():
    inc = incident([f(FindingKind.SLO_BREACH, "p99", 0.9, 0.5, statistic="p99")])
    assert tier(inc, streaks={"p99": 2}).severity is None  # pending, like Prometheus' `for:`
    assert tier(inc, streaks={"p99": 3}).severity == Severity.CRITICAL


def test_gpu_saturation_alone_is_a_warning():
    inc = incident([f(FindingKind.GPU_SATURATION, "gpu0", 99, 95, statistic="gpu_util_pct")])
    assert tier(inc).severity == Severity.WARNING


def test_thresholds_are_configurable():
    p = Policy(drift_warning=0.3, drift_critical=0.5)
    assert tier(incident([f(FindingKind.FEATURE_DRIFT, "age", 0.25, 0.1)]), policy=p).severity is None


# ----------------------------------------------------------------------------- guardrails
CRIT_DEPLOY = incident([f(FindingKind.KPI_DROP, "ctr", -12.0, -5.0)], [deploy_cause()])


DEFAULT_GUARD = RollbackGuard()


def verdict(inc=CRIT_DEPLOY, severity=Severity.CRITICAL, guard=DEFAULT_GUARD, rollbacks=()):
    return check_rollback(inc, severity, guard, now=T, recent_rollbacks=list(rollbacks))


def test_rollback_allowed_for_critical_deploy_incident_to_previous_version():
    v = verdict()
    assert v.allowed and v.to_version == "1" and not v.dry_run


def test_no_rollback_for_a_warning():
    v = verdict(severity=Severity.WARNING)
    assert not v.allowed and "warning" in v.reason


def test_no_rollback_when_top_cause_is_not_a_deploy():
    gpu = Cause(CauseKind.GPU_SATURATION, "gpu0", 0.95, "gpu")
    v = verdict(incident([f(FindingKind.SLO_BREACH, "p99", 1, 0.5)], [gpu, deploy_cause(0.5)]))
    assert not v.allowed and "not a deploy" in v.reason


def test_no_rollback_for_a_deploy_of_another_model():
    v = verdict(incident([f(FindingKind.KPI_DROP, "ctr", -12, -5)], [deploy_cause(model="other")]))
    assert not v.allowed


def test_no_rollback_without_a_previous_version():
    v = verdict(incident([f(FindingKind.KPI_DROP, "ctr", -12, -5)], [deploy_cause(previous=None)]))
    assert not v.allowed and "no previous version" in v.reason


def test_disabled_flag_refuses():
    v = verdict(guard=RollbackGuard(enabled=False))
    assert not v.allowed and "disabled" in v.reason


def test_dry_run_is_allowed_but_marked():
    v = verdict(guard=RollbackGuard(dry_run=True))
    assert v.allowed and v.dry_run


def test_min_confidence_refuses_with_numbers():
    v = verdict(incident([f(FindingKind.KPI_DROP, "ctr", -12, -5)], [deploy_cause(score=0.5)]))
    assert not v.allowed and "0.50 < min_confidence 0.60" in v.reason


def test_cooldown_refuses_within_six_hours():
    v = verdict(rollbacks=[T - 5 * 3600])
    assert not v.allowed and "cool-down" in v.reason
    assert verdict(rollbacks=[T - 7 * 3600]).allowed


def test_daily_cap_refuses_the_third_rollback():
    guard = RollbackGuard(cooldown=0, max_per_day=2)
    v = verdict(guard=guard, rollbacks=[T - 10 * 3600, T - 8 * 3600])
    assert not v.allowed and "daily cap" in v.reason
    assert verdict(guard=guard, rollbacks=[T - 30 * 3600, T - 8 * 3600]).allowed


def test_a_call_pair_new_to_the_baseline_ranks_but_never_alerts_alone():
    """A new dependency (a pair the trace baseline never saw) is judged against the
    callee's or the system's other calls: evidence for ranking an incident's services,
    but a new cross-zone call is slower than the pool with nothing wrong, so alone it
    must not page; the same slowdown measured against the pair's own calls warns."""
    def edge(new: bool) -> Finding:
        return f(FindingKind.TRACE_ANOMALY, "batch -> scorer", 30.0, 3.0, statistic="edge_time_ms_p50",
                 service="scorer", message="calls batch -> scorer: median 30 ms vs 2 ms",
                 evidence={"reference": "all calls" if new else "this pair", "ranking_only": new})
    assert tier(incident([edge(True)])).severity is None
    own = tier(incident([edge(False)]))
    assert own.severity == Severity.WARNING and any("batch -> scorer" in r for r in own.reasons)
    with_other = tier(incident([edge(True), f(FindingKind.FEATURE_DRIFT, "age", 0.15, 0.1)]))
    assert with_other.severity == Severity.WARNING and not any("batch -> scorer" in r for r in with_other.reasons)


def test_a_log_line_that_stopped_without_spans_ranks_but_never_alerts_alone():
    quiet = f(FindingKind.LOG_ANOMALY, "orders: saved", 0.0, 2.0, statistic="vanished_template",
              service="orders", message="orders: 'saved' stopped", evidence={"ranking_only": True})
    assert tier(incident([quiet])).severity is None
    loud = f(FindingKind.LOG_ANOMALY, "orders: error", 40.0, 2.0, statistic="error_burst", service="orders",
             message="orders: 40 error lines")
    assert tier(incident([quiet, loud])).severity == Severity.WARNING


def test_a_kpi_drop_after_a_deploy_waits_until_it_has_held_before_it_is_critical():
    """One noisy cycle after a deploy rolled most healthy deploys back (benchmarks.kpi_noise):
    a regression is critical (and may roll back) only once the KPI detector says it held."""
    not_yet = f(FindingKind.KPI_DROP, "ctr", -7.0, -5.0, statistic="kpi_change_pct",
                evidence={"held_s": 0.0, "held_needed_s": 900.0})
    d = tier(incident([not_yet], [deploy_cause()]), last_deploy=T - 900)
    assert d.severity == Severity.WARNING
    assert any("critical once the drop has held 15 min beyond the KPI's own noise" in r for r in d.reasons), d.reasons
    assert not check_rollback(incident([not_yet], [deploy_cause()]), d.severity, DEFAULT_GUARD, now=T,
                              recent_rollbacks=[]).allowed
    held = f(FindingKind.KPI_DROP, "ctr", -7.0, -5.0, statistic="kpi_change_pct",
             evidence={"held_s": 900.0, "held_needed_s": 900.0})
    d = tier(incident([held], [deploy_cause()]), last_deploy=T - 900)
    assert d.severity == Severity.CRITICAL
    assert any("after deploy of m v2, held 15 min" in r for r in d.reasons), d.reasons


def test_drift_exactly_at_the_warning_threshold_warns_like_the_finding_it_is():
    """The detector calls a statistic at the threshold drift (as Evidently does); the policy
    read it as below its warning and the drift finding alerted nobody."""
    d = tier(incident([f(FindingKind.FEATURE_DRIFT, "age", 0.1, 0.1)]))
    assert d.severity == Severity.WARNING and any("0.1 >= 0.1" in r for r in d.reasons)
    inc = incident([f(FindingKind.FEATURE_DRIFT, "age", 0.2, 0.1),
                    f(FindingKind.KPI_DROP, "ctr", -6.0, -5.0, statistic="kpi_change_pct")])
    assert tier(inc).severity == Severity.CRITICAL


def test_a_kpi_drop_whose_noise_is_unknown_does_not_promise_to_turn_critical():
    """Too few baseline points to tell the KPI's noise: the drop never holds, and the warning
    said it would be critical after 15 min, which never came."""
    unknown = f(FindingKind.KPI_DROP, "ctr", -25.0, -5.0, statistic="kpi_change_pct",
                evidence={"held_s": 0.0, "held_needed_s": 900.0, "noise_pct": None})
    d = tier(incident([unknown], [deploy_cause()]), last_deploy=T - 900)
    assert d.severity == Severity.WARNING
    assert not any("critical once" in r for r in d.reasons), d.reasons
    assert any("KPI ctr -25.0% after deploy of m v2: its noise is unknown (too few points in its baseline hour)"
               in r for r in d.reasons), d.reasons


def test_a_kpi_drop_that_has_not_held_and_does_not_say_how_long_it_needs_still_tiers():
    bare = f(FindingKind.KPI_DROP, "ctr", -7.0, -5.0, statistic="kpi_change_pct", evidence={"held_s": 0.0})
    d = tier(incident([bare], [deploy_cause()]), last_deploy=T - 900)
    assert d.severity == Severity.WARNING
    assert any("critical once the drop has held beyond the KPI's own noise" in r for r in d.reasons), d.reasons


def test_a_kpi_regression_that_held_is_still_told_as_held_when_a_later_cycle_wavers():
    """The incident stays critical once the drop has held; a later cycle whose last stretch fell back
    inside the bars made its stored reasons (/v1/incidents) say "critical once the drop has held 15 min"."""
    from correlators.causes import merge_findings

    def kpi(held_s):
        return f(FindingKind.KPI_DROP, "ctr", -7.0, -5.0, statistic="kpi_change_pct", onset=T - 1200,
                 evidence={"held_s": held_s, "held_needed_s": 900.0, "noise_pct": 2.0})

    story = merge_findings([kpi(900.0)], [kpi(0.0)])
    d = tier(incident(story, [deploy_cause()]), last_deploy=T - 1800)
    assert d.severity == Severity.CRITICAL, d.reasons
    assert any("after deploy of m v2, held 15 min" in r for r in d.reasons), d.reasons


def test_a_kpi_regression_held_at_once_says_so_not_held_5_min():
    """The last stretch alone 8 x the KPI's noise away holds at once: the reason read "held 5 min",
    a third of the 15 minutes the warning before it had promised."""
    at_once = f(FindingKind.KPI_DROP, "ctr", -15.0, -5.0, statistic="kpi_change_pct",
                evidence={"held_s": 300.0, "held_needed_s": 900.0, "held_z": 4.0, "noise_pct": 1.5})
    d = tier(incident([at_once], [deploy_cause()]), last_deploy=T - 900)
    assert d.severity == Severity.CRITICAL
    assert any(r.startswith("KPI ctr -15.0% after deploy of m v2, held at once: a drop beyond 8x its noise (1.5%)")
               for r in d.reasons), d.reasons
    assert not any("held 5 min" in r for r in d.reasons), d.reasons


def test_a_kpi_drop_whose_traffic_stopped_after_a_deploy_says_why_it_is_not_critical():
    """Traffic stopped (0/0) before the drop held: no stretch ever holds while it is NaN, and the
    warning promised "critical once the drop has held 15 min", a page that never came."""
    quiet = f(FindingKind.KPI_DROP, "ctr", -40.0, -5.0, statistic="kpi_change_pct",
              evidence={"held_s": 0.0, "held_needed_s": 900.0, "noise_pct": 3.0, "no_traffic_s": 420.0})
    d = tier(incident([quiet], [deploy_cause()]), last_deploy=T - 900)
    assert d.severity == Severity.WARNING
    assert not any("critical once" in r for r in d.reasons), d.reasons
    assert any("KPI ctr -40.0% after deploy of m v2: no traffic (0/0) for the last 7 min: the drop cannot hold "
               "until traffic returns (not critical meanwhile; a person may roll back)" in r for r in d.reasons), \
        d.reasons


def test_a_deploys_kpi_drop_that_has_not_held_is_not_made_critical_by_drift_after_cold_start():
    """Past cold start (`cold_start: 1h` here; or a story open longer than the default 7 days) a
    new version's own prediction drift with one noisy cycle's KPI drop was critical by the drift
    rule, and the guard rolled the deploy back on that one cycle: the hold a deploy's regression
    needs was skipped. Drift with a drop that held, or with no deploy to blame, is as before."""
    short = Policy(cold_start=3600.0)
    drift = f(FindingKind.PREDICTION_DRIFT, "score", 0.25, 0.1)

    def kpi(held_s):
        return f(FindingKind.KPI_DROP, "ctr", -7.0, -5.0, statistic="kpi_change_pct",
                 evidence={"held_s": held_s, "held_needed_s": 900.0, "noise_pct": 2.0})

    noisy = incident([drift, kpi(0.0)], [deploy_cause()])
    d = tier(noisy, last_deploy=T - 5400, policy=short)
    assert d.severity == Severity.WARNING, d.reasons
    assert not check_rollback(noisy, d.severity, DEFAULT_GUARD, now=T, recent_rollbacks=[]).allowed
    assert any("critical once the drop has held 15 min" in r for r in d.reasons), d.reasons
    assert tier(incident([drift, kpi(900.0)], [deploy_cause()]), last_deploy=T - 5400,
                policy=short).severity == Severity.CRITICAL
    assert tier(incident([drift, kpi(0.0)]), policy=short).severity == Severity.CRITICAL  # no deploy: drift's rule
