"""The alert chain (alerts/pipeline.py) stage by stage, then whole; and notifier routing."""
from __future__ import annotations

from dataclasses import replace

from alerts.lifecycle import LifecycleDecision, LifecycleSettings, OpenIncident, Step
from alerts.outbox import MessageKind
from alerts.pipeline import (
    ALERT_CHAIN,
    AlertInputs,
    AlertPlan,
    AlertRules,
    ModelHistory,
    lifecycle_stage,
    plan_alerts,
    rollback_guard_stage,
    route_stage,
    silence_stage,
    tier_stage,
)
from alerts.policy import Policy, RollbackGuard, Severity, TierDecision
from alerts.routing import CHAT_ROUTE, TIMELINE_ROUTE, NotifierRegistry, Routes, route_of
from correlators.incident import Cause, CauseKind, Incident
from detectors.records import DeployEvent, Finding, FindingKind

T = 1_800_000_000.0
RULES = AlertRules(Policy(rollback=RollbackGuard(enabled=True, dry_run=False)), LifecycleSettings(2, 3600),
                   Routes("#owner", "#oncall"))


def incident(kpi_pct: float = -12.0, deploy: bool = True) -> Incident:
    f = Finding(kind=FindingKind.KPI_DROP, entity="ctr", model="m", value=kpi_pct, threshold=-5.0,
                window_start=T - 1800, window_end=T, onset=T - 900, score=0.9)
    d = DeployEvent("m", "champion", "2", "1", T - 1200, "registry")
    causes = [Cause(CauseKind.DEPLOY, "m v2", 0.9, "deployed before onset", {"previous_version": "1"}, d)] \
        if deploy else []
    return Incident("m", T - 1800, T, T - 900, [f], causes, "m: KPI ctr")


def inputs(inc: Incident | None, **history: object) -> AlertInputs:
    return AlertInputs(inc, inc, ModelHistory(**history), True, T)


def test_the_chain_reads_in_one_line_in_its_documented_order() -> None:
    assert [s.__name__ for s in ALERT_CHAIN] == ["tier_stage", "inhibit_stage", "silence_stage", "lifecycle_stage",
                                                  "route_stage",
                                                  "rollback_guard_stage"]


def test_tier_stage_makes_a_kpi_drop_after_a_deploy_critical() -> None:
    plan = tier_stage(inputs(incident()), RULES, AlertPlan())
    assert plan.tier is not None and plan.tier.severity == Severity.CRITICAL and plan.digest


def test_tier_stage_with_nothing_wrong_leaves_the_plan_empty() -> None:
    assert tier_stage(inputs(None), RULES, AlertPlan()) == AlertPlan()


def silenced(severity: Severity = Severity.WARNING) -> OpenIncident:
    return OpenIncident(severity, "d0", T - 60, T + 3600, False)


def test_silence_stage_mutes_a_silenced_incident_but_not_an_escalation() -> None:
    warn = AlertPlan(tier=TierDecision(Severity.WARNING, ["x"], False))
    crit = AlertPlan(tier=TierDecision(Severity.CRITICAL, ["x"], False))
    assert silence_stage(inputs(incident(), open_incident=silenced()), RULES, warn).muted
    assert not silence_stage(inputs(incident(), open_incident=silenced()), RULES, crit).muted
    assert not silence_stage(inputs(incident()), RULES, warn).muted  # nothing open, nothing silenced


def test_lifecycle_stage_holds_back_a_muted_change() -> None:
    plan = AlertPlan(tier=TierDecision(Severity.WARNING, ["x"], False), digest="d1", muted=True)
    step = lifecycle_stage(inputs(incident(), open_incident=silenced()), RULES, plan).lifecycle
    assert step.step == Step.UPDATE and not step.notify


def test_route_stage_pages_oncall_only_when_critical_and_notifying() -> None:
    def routed(sev: Severity, notify: bool) -> list[str]:
        plan = AlertPlan(lifecycle=LifecycleDecision(Step.OPEN, sev, notify, 0))
        return route_stage(inputs(incident()), RULES, plan).channels

    assert routed(Severity.WARNING, True) == ["#owner"]
    assert routed(Severity.CRITICAL, True) == ["#owner", "#oncall"]
    assert routed(Severity.CRITICAL, False) == []


def test_rollback_guard_stage_judges_once_per_incident() -> None:
    plan = AlertPlan(lifecycle=LifecycleDecision(Step.OPEN, Severity.CRITICAL, True, 0))
    verdict = rollback_guard_stage(inputs(incident()), RULES, plan).rollback
    assert verdict is not None and verdict.allowed and verdict.to_version == "1"
    assert rollback_guard_stage(inputs(incident(), rollback_done_for_incident=True), RULES, plan).rollback is None
    resolved = replace(plan, lifecycle=LifecycleDecision(Step.RESOLVE, Severity.CRITICAL, True, 0))
    assert rollback_guard_stage(inputs(incident()), RULES, resolved).rollback is None


def test_the_whole_chain_opens_pages_and_allows_the_rollback() -> None:
    plan = plan_alerts(inputs(incident()), RULES)
    assert plan.lifecycle.step == Step.OPEN and plan.lifecycle.severity == Severity.CRITICAL
    assert plan.channels == ["#owner", "#oncall"] and plan.rollback is not None and plan.rollback.allowed


def test_a_chain_is_only_its_stages() -> None:
    """Dropping the rollback guard from the chain means no rollback verdict at all."""
    plan = plan_alerts(inputs(incident()), RULES, chain=ALERT_CHAIN[:-1])
    assert plan.lifecycle.step == Step.OPEN and plan.rollback is None


# ----------------------------------------------------------------------------- routing
class Chat:
    name = "chat"


class Timeline:
    name = "timeline"
    route = TIMELINE_ROUTE


def test_notifiers_are_routed_by_their_declared_route_not_their_name() -> None:
    reg = NotifierRegistry({"grafana": Chat(), "x": Timeline()})
    assert route_of(Chat()) == CHAT_ROUTE
    assert reg.taking(MessageKind.INCIDENT, per_channel=True) == ["grafana"]
    assert reg.taking(MessageKind.INCIDENT, per_channel=False) == ["x"]
    assert reg.taking(MessageKind.DEPLOY) == ["x"] and reg.taking(MessageKind.ROLLBACK) == ["x"]
    assert list(reg) == ["grafana", "x"] and len(reg) == 2


def test_matching_silences_maintenance_and_inhibition_mute_without_stopping_the_incident() -> None:
    from alerts.labels import source_down_labels
    from alerts.matchers import parse_matcher
    from alerts.pipeline import Suppression
    from alerts.silences import Silence

    def planned(sup: Suppression) -> AlertPlan:
        return plan_alerts(AlertInputs(incident(), incident(), ModelHistory(), True, T, sup), RULES)

    silence = Silence(7, (parse_matcher('model="m"'),), T - 60, T + 60, "alice", "reindex")
    plan = planned(Suppression(silences=(silence,)))
    assert plan.lifecycle.step == Step.OPEN and not plan.lifecycle.notify and plan.muted_by == [silence.describe()]
    other = Silence(8, (parse_matcher('model="other"'),), T - 60, T + 60, "alice", "x")
    assert planned(Suppression(silences=(other,))).lifecycle.notify
    assert planned(Suppression(maintenance=("nightly",))).muted_by == ["maintenance window nightly"]
    critical_elsewhere = {"alertname": "Other", "model": "m", "severity": "critical"}
    assert not planned(Suppression(firing=(critical_elsewhere,))).muted  # this incident is critical itself
    assert planned(Suppression(firing=(source_down_labels("prometheus"),))).lifecycle.notify  # not only no-data


def test_a_resolve_tells_those_who_were_told_even_under_a_silence() -> None:
    told = OpenIncident(Severity.WARNING, "d0", T - 600, None, False)
    untold = OpenIncident(Severity.WARNING, "d0", None, None, False)
    plan = AlertPlan(muted=True)
    quiet = replace(inputs(None, open_incident=told, quiet_cycles=1))
    assert lifecycle_stage(quiet, RULES, plan).lifecycle.notify
    assert not lifecycle_stage(inputs(None, open_incident=untold, quiet_cycles=1), RULES, plan).lifecycle.notify


def test_a_critical_incident_whose_cycle_reads_warning_is_unchanged_not_renotified() -> None:
    """Severity never drops while open: a cycle whose own findings read only a warning (an
    SLO streak broken for a cycle) leaves the critical incident as told, with no update
    sent to Slack and the receivers each time the tier flaps."""
    from alerts.pipeline import incident_digest

    inc = incident(deploy=False)  # a KPI drop with no deploy to blame: a warning this cycle
    told = OpenIncident(Severity.CRITICAL, incident_digest(inc, Severity.CRITICAL), T - 600, None, False)
    plan = plan_alerts(inputs(inc, open_incident=told), RULES)
    assert plan.lifecycle.severity == Severity.CRITICAL
    assert (plan.lifecycle.step, plan.lifecycle.notify) == (Step.UNCHANGED, False), plan.lifecycle


def test_an_open_incident_does_not_resolve_while_its_slo_is_breached_but_pending() -> None:
    """An SLO breach shorter than slo_consecutive_cycles alerts on nothing yet, but an open
    incident whose SLO is breached is not quiet: resolved now, it would reopen (and page) as
    soon as the streak is long enough."""
    slo = Finding(kind=FindingKind.SLO_BREACH, entity="p99", model="m", value=0.9, threshold=0.5,
                  window_start=T - 1800, window_end=T, onset=T - 120, score=0.8)
    cand = Incident("m", T - 1800, T, T - 120, [slo], [], "m: SLO p99")
    opened = OpenIncident(Severity.CRITICAL, "d0", T - 600, None, False)
    plan = plan_alerts(AlertInputs(cand, cand, ModelHistory(open_incident=opened, slo_streaks={"p99": 1},
                                                            quiet_cycles=1), True, T), RULES)
    assert plan.lifecycle.step != Step.RESOLVE and not plan.channels, plan.lifecycle


def test_a_critical_incident_whose_regression_has_gone_is_not_rolled_back_later() -> None:
    """A rollback refused while the deploy's regression was there (a maintenance window, the
    cool-down, the fleet cap) goes ahead afterwards only if this cycle still reads critical:
    the incident's severity never drops while it is open, and judged on that a model whose
    KPI had recovered to a wobble was rolled back once the window closed."""
    wobble = incident(kpi_pct=-6.0)
    wobble = replace(wobble, findings=[replace(wobble.findings[0], evidence={"held_s": 0.0, "held_needed_s": 900.0})])
    told = OpenIncident(Severity.CRITICAL, None, T - 600, None, False)
    plan = plan_alerts(inputs(wobble, open_incident=told), RULES)
    assert plan.lifecycle.severity == Severity.CRITICAL  # the incident stays critical, as told
    verdict = plan.rollback
    assert verdict is not None and not verdict.allowed and verdict.code == "not_critical", verdict
    held = replace(wobble, findings=[replace(wobble.findings[0], evidence={"held_s": 900.0, "held_needed_s": 900.0})])
    plan = plan_alerts(inputs(held, open_incident=told), RULES)
    assert plan.rollback is not None and plan.rollback.allowed, plan.rollback


def test_a_regression_still_there_hours_after_its_deploy_is_still_rolled_back_once_allowed() -> None:
    """A rollback refused for hours (the 6 h cool-down, a long maintenance window) goes ahead
    once allowed if the regression that held is still there: this cycle's findings alone date
    the onset inside the window, where the deploy 3 h before is no suspect any more; the
    whole story's causes still blame it."""
    held = incident()
    held = replace(held, findings=[replace(held.findings[0], evidence={"held_s": 900.0, "held_needed_s": 900.0})])
    this_cycle = replace(held, causes=[])  # correlated from this cycle's window: the deploy is out of reach
    told = OpenIncident(Severity.CRITICAL, None, T - 600, None, False)
    plan = plan_alerts(AlertInputs(this_cycle, held, ModelHistory(open_incident=told), True, T), RULES)
    assert plan.rollback is not None and plan.rollback.allowed, plan.rollback


def test_a_deploys_kpi_drop_whose_traffic_stopped_before_it_held_is_told_again() -> None:
    """The warning told "critical once the drop has held 15 min"; traffic then stopped (0/0) and the
    drop can no longer hold, but the digest did not change: nothing was told, and people waited
    for a page that never came. Told once when it stops (and again when traffic returns)."""
    def kpi_drop(**evidence: object) -> Incident:
        inc = incident(-12.0)
        ev = {"held_s": 0.0, "held_needed_s": 900.0, "noise_pct": 2.0, **evidence}
        return replace(inc, findings=[replace(inc.findings[0], evidence=ev)])

    told = tier_stage(inputs(kpi_drop(no_traffic_s=None)), RULES, AlertPlan()).digest
    assert told == tier_stage(inputs(kpi_drop()), RULES, AlertPlan()).digest  # unchanged when traffic flows
    opened = OpenIncident(Severity.WARNING, told, T - 300, None, False)
    plan = plan_alerts(inputs(kpi_drop(no_traffic_s=420.0), open_incident=opened), RULES)
    assert plan.lifecycle.step == Step.UPDATE and plan.lifecycle.notify, plan.lifecycle
    assert plan.tier is not None and any("no traffic (0/0) for the last 7 min" in r for r in plan.tier.reasons)
    later = plan_alerts(inputs(kpi_drop(no_traffic_s=480.0), open_incident=replace(opened, digest=plan.digest)),
                        RULES)
    assert later.lifecycle.step == Step.UNCHANGED, later.lifecycle  # a minute more of it is no news


def test_an_open_incident_rescored_each_cycle_is_not_told_again() -> None:
    """While a store is down the window is re-scored every cycle (scored, not learnt), so the
    same anomaly comes back with new values, windows and onsets each minute: Slack and the
    receivers hear of it once, not once a cycle (a digest over values would page every minute)."""
    from alerts.pipeline import incident_digest

    first = incident()
    told = OpenIncident(Severity.CRITICAL, incident_digest(first, Severity.CRITICAL), T - 600, None, False)
    for shift in (60.0, 120.0, 180.0):
        f = replace(first.findings[0], value=-12.0 - shift / 60, window_start=T - 1800 + shift,
                    window_end=T + shift, onset=T - 900 + shift, score=0.9 - shift / 1000)
        again = replace(first, findings=[f], window_start=T - 1800 + shift, window_end=T + shift,
                        onset=T - 900 + shift)
        step = plan_alerts(AlertInputs(again, again, ModelHistory(open_incident=told), True, T + shift), RULES)
        assert (step.lifecycle.step, step.lifecycle.notify, step.channels) == (Step.UNCHANGED, False, []), step
