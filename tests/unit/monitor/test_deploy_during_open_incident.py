"""A deploy while an unrelated incident is open (a drift warning open for days).

The cycle's page and the rollback guard must tell the same story. Correlated on this cycle's
window alone, a KPI drop right after v2 blamed v2 and paged critical "after deploy of m v2";
the guard judged the whole story, which began with the drift days before the deploy, and
refused ("top cause is not a deploy of this model"). These run the pure stages a cycle runs:
correlate (monitor/cycle/correlate.py), then the alert chain (alerts/pipeline.py); the last
runs the whole daemon on stand-ins.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from alerts.lifecycle import LifecycleSettings, OpenIncident
from alerts.pipeline import AlertInputs, AlertPlan, AlertRules, ModelHistory, plan_alerts
from alerts.policy import Policy, RollbackGuard, Severity
from alerts.rollback import TargetFacts, blamed_versions, choose_target
from alerts.routing import Routes
from correlators.causes import CorrelationSettings, released_into
from correlators.incident import Cause
from detectors.records import DeployEvent, Finding, FindingKind
from monitor.cycle.correlate import correlate
from monitor.cycle.plan import CycleStart
from monitor.types import Detection, Window
from tests.helpers_vigil import (
    CTR_QUERY,
    MODEL,
    P99_QUERY,
    T0,
    StubPrometheus,
    make_config,
    make_vigil,
    serving_registry,
    step_curve,
)

T = 1_800_000_000.0
DAYS = 3 * 86400.0
W = Window(t=T, start=T - 1800, baseline_start=T - 5400, baseline_end=T - 1800)
RULES = AlertRules(Policy(rollback=RollbackGuard(enabled=True, dry_run=False)), LifecycleSettings(2, 3600),
                   Routes("#owner", "#oncall"))
V2 = DeployEvent("m", "champion", "2", "1", T - 2400, "registry")  # 40 min ago, routine release
HELD = {"held_s": 900.0, "held_needed_s": 900.0, "held_z": 4.0, "noise_pct": 1.0}


def drift(onset: float) -> Finding:
    return Finding(kind=FindingKind.FEATURE_DRIFT, entity="user_age", model="m", value=0.15, threshold=0.1,
                   window_start=W.start, window_end=W.t, onset=onset, score=0.6, statistic="psi")


def ctr(onset: float) -> Finding:
    return Finding(kind=FindingKind.KPI_DROP, entity="ctr", model="m", value=-12.0, threshold=-5.0,
                   window_start=W.start, window_end=W.t, onset=onset, score=0.6, statistic="kpi_change_pct",
                   evidence=dict(HELD))


def plan(earlier: list[Finding], now: list[Finding]) -> AlertPlan:
    """One cycle at T of the incident open since T - 3 days (told as a warning), v2 40 min ago."""
    start = CycleStart(earlier_findings=earlier, opened_at=T - DAYS, onset=T - DAYS)
    story = correlate("m", Detection(findings=now), [], start, [V2], W, CorrelationSettings())
    told = OpenIncident(Severity.WARNING, "d0", T - 600, None, False, told_severity=Severity.WARNING)
    history = ModelHistory(open_incident=told, last_deploy_at=V2.at, latest_at=T - 60)
    return plan_alerts(AlertInputs(story.incident, story.content, history, True, T), RULES)


def _v2_released_at_t0_minus_40_min(tmp_path: Any, reg: Any, ctr: Any) -> Any:
    """The daemon from T0 - 90 min to T0, a cycle a minute: p99 breaching its SLO from
    T0 - 80 min, CTR as `ctr` says, a person releasing v2 at T0 - 40 min."""
    prom = StubPrometheus({CTR_QUERY: ctr, P99_QUERY: step_curve(0.1, 0.8, T0 - 4800)})
    vigil = make_vigil(make_config(tmp_path), prometheus=prom, registry=reg, start=T0 - 5400)
    for t in range(int(T0 - 5400), int(T0 + 300), 60):
        if t == T0 - 2400:
            reg.add_version(MODEL, "2", created_at=T0 - 2500)
            reg.aliases[(MODEL, "champion")] = "2"
        vigil.run_cycle(MODEL, float(t))
    return vigil


def test_a_kpi_drop_that_began_after_a_deploy_during_an_old_drift_warning_is_the_deploys_regression() -> None:
    """The drift (no KPI drop) went on for days; CTR fell 25 min ago, 15 min after v2. The page
    blames v2, so does the guard: rolled back to v1, every other guard check passing."""
    p = plan([drift(T - DAYS)], [drift(W.start), ctr(T - 1500)])
    assert p.tier is not None and p.tier.severity == Severity.CRITICAL
    assert any("after deploy of m v2" in r for r in p.tier.reasons), p.tier.reasons
    assert p.rollback is not None and p.rollback.allowed, p.rollback
    assert (p.rollback.from_version, p.rollback.to_version) == ("2", "1")


def test_a_kpi_drop_that_began_with_the_drift_days_before_the_deploy_is_not_blamed_on_it() -> None:
    """CTR has been down since the drift began, days before v2 (its baseline is frozen there, so
    this cycle's window sees it down from its first minute): the page must not say "after deploy
    of m v2" and page on-call for a rollback the guard (rightly) refuses."""
    p = plan([drift(T - DAYS), ctr(T - DAYS)], [drift(W.start), ctr(W.start)])
    assert p.tier is not None
    assert not any("after deploy" in r for r in p.tier.reasons), p.tier.reasons
    assert p.tier.severity == Severity.WARNING, p.tier.reasons
    assert p.rollback is not None and not p.rollback.allowed, p.rollback


def test_a_release_during_an_open_incident_whose_kpi_falls_after_it_is_rolled_back_by_the_daemon(
        tmp_path: Any) -> None:
    """The whole daemon, minute by minute: p99 latency breaches its SLO from T0 - 80 min (an
    incident open, nothing of the model's own); v2 goes out at T0 - 40 min, and CTR falls 12 %
    from T0 - 25 min. The poll read v1 after the incident opened, so it records v2 as a
    "response" (a move made while an incident was open): it was no suspect at all, the incident
    blamed nothing and the regression stayed a warning line under the SLO's page."""
    reg = serving_registry(version="1", versions=("1",))
    prom = StubPrometheus({CTR_QUERY: step_curve(0.05, 0.044, T0 - 1500), P99_QUERY: step_curve(0.1, 0.8, T0 - 4800)})
    vigil = make_vigil(make_config(tmp_path), prometheus=prom, registry=reg, start=T0 - 5400)
    for t in range(int(T0 - 5400), int(T0 + 300), 60):
        if t == T0 - 2400:
            reg.add_version(MODEL, "2", created_at=T0 - 2500)
            reg.aliases[(MODEL, "champion")] = "2"
        vigil.run_cycle(MODEL, float(t))
    assert [(d.version, d.source) for d in vigil.store.deploys(MODEL)][1:] == [("2", "response"), ("1", "rollback")]
    [row] = vigil.store.incidents(model=MODEL)
    assert row.opened_at < T0 - 2400  # open before the release
    top = vigil.store.incident(row.id).causes[0]
    assert (top["kind"], top["entity"]) == ("deploy", f"{MODEL} v2"), top
    assert reg.aliases[(MODEL, "champion")] == "1", reg.moves  # v2 rolled back


def test_a_releases_kpi_drop_is_measured_against_the_hour_before_the_release_not_the_incidents_frozen_one(
        tmp_path: Any) -> None:
    """The KPI baseline freezes at the incident's onset (T0 - 80 min, the SLO breach): CTR was
    0.05 in the hour before, rose to 0.056 by itself at T0 - 85 min (the morning), v2 went out
    at T0 - 40 min and CTR fell to 0.049 from T0 - 25 min: -12.5 % on the hour before the
    release, -2 % on the frozen hour. The release's regression was measured against an old
    normal, read as nothing, and stayed."""
    reg = serving_registry(version="1", versions=("1",))
    ctr = lambda ts: np.where(ts < T0 - 5100, 0.05, np.where(ts < T0 - 1500, 0.056, 0.049))  # noqa: E731
    vigil = _v2_released_at_t0_minus_40_min(tmp_path, reg, ctr)
    [row] = vigil.store.incidents(model=MODEL)
    kpi = [f for f in vigil.store.incident(row.id).findings if f["kind"] == "kpi_drop"]
    assert kpi and kpi[0]["baseline"] == 0.056 and kpi[0]["value"] < -12, kpi
    assert reg.aliases[(MODEL, "champion")] == "1", reg.moves  # v2 rolled back


def test_a_fix_forward_rolled_back_never_returns_the_version_the_incident_began_with() -> None:
    """v2 went out 90 min ago and p99 breached its SLO 30 min after it (the incident, v2 its
    suspect); on-call released v3 to fix it forward 40 min ago and CTR fell 5 min after v3.
    v3 now ranks first, and only the best-ranked deploy was blamed: the automatic rollback
    took v2, the version before v3, back to the SLO breach the incident began with."""
    v2 = DeployEvent("m", "champion", "2", "1", T - 5400, "registry")
    v3 = DeployEvent("m", "champion", "3", "2", T - 2400, "response")
    slo = Finding(kind=FindingKind.SLO_BREACH, entity="p99", model="m", value=0.8, threshold=0.3,
                  window_start=W.start, window_end=W.t, onset=T - 3600, score=0.6, statistic="burn_rate")
    start = CycleStart(earlier_findings=[slo], opened_at=T - 3500, onset=T - 3600)
    story = correlate("m", Detection(findings=[slo, ctr(T - 2100)]), [], start, [v2, v3], W, CorrelationSettings())
    assert story.content is not None
    assert [c.entity for c in story.content.causes if c.kind == "deploy"] == ["m v3", "m v2"]
    causes = [c.to_dict() for c in story.content.causes]  # as the incident row keeps them
    blamed = blamed_versions([(1, causes)], [])
    choice = choose_target(TargetFacts(serving="3", known_good=[], blamed=blamed, deploy_previous="2"))
    assert choice.version is None, choice
    assert "v2 (incident 1 suspects its deploy)" in choice.reason, choice.reason


def test_a_revert_made_before_the_incident_opened_is_never_blamed_for_what_came_after_it() -> None:
    """p99 began breaching at T - 60 min, the incident opened at T - 40 min; in between a person
    reverted v2 to v1 (no incident open yet, so the poll recorded a deploy, not a response) and
    CTR fell at T - 45 min. The revert was paged as the regression ("after deploy of m v1") and
    the guard allowed rolling it back to v2, the version the person had just taken out."""
    v2 = DeployEvent("m", "champion", "2", "1", T - DAYS, "registry")
    revert = DeployEvent("m", "champion", "1", "2", T - 3000, "registry")
    slo = Finding(kind=FindingKind.SLO_BREACH, entity="p99", model="m", value=0.8, threshold=0.3,
                  window_start=W.start, window_end=W.t, onset=T - 3600, score=0.6, statistic="burn_rate")
    start = CycleStart(earlier_findings=[slo], opened_at=T - 2400, onset=T - 3600)
    story = correlate("m", Detection(findings=[slo, ctr(T - 2700)]), [], start, [v2, revert], W,
                      CorrelationSettings())
    told = OpenIncident(Severity.WARNING, "d0", T - 600, None, False, told_severity=Severity.WARNING)
    history = ModelHistory(open_incident=told, last_deploy_at=revert.at, latest_at=T - 60)
    p = plan_alerts(AlertInputs(story.incident, story.content, history, True, T), RULES)
    assert p.tier is not None and not any("after deploy" in r for r in p.tier.reasons), p.tier.reasons
    assert p.rollback is not None and not p.rollback.allowed, p.rollback
    assert released_into("m", T - 3600, [slo], [v2, revert]) is None  # its KPI baseline stays the incident's


def test_a_kpi_that_recovered_after_a_fix_forward_and_fell_again_is_the_fix_forwards_regression() -> None:
    """v2 went out 90 min ago; p99 breached its SLO and CTR fell 10 min later (v2 the suspect);
    on-call released v3 40 min ago (a fix forward). CTR was back by then (last seen down 50 min
    ago) and fell again 25 min ago, 15 min after v3, the SLO still breaching. The merge kept the
    drop's first onset, 80 min ago: v3 was never suspected, the page said "after deploy of m v2"
    while v3 served, and the rollback was asked of v2, which no longer served."""
    v2 = DeployEvent("m", "champion", "2", "1", T - 5400, "registry")
    v3 = DeployEvent("m", "champion", "3", "2", T - 2400, "response")
    slo = Finding(kind=FindingKind.SLO_BREACH, entity="p99", model="m", value=0.8, threshold=0.3,
                  window_start=W.start, window_end=W.t, onset=T - 4800, score=0.6, statistic="burn_rate")
    v2_drop = replace(ctr(T - 4800), window_start=T - 4800, window_end=T - 3000)  # last seen down 50 min ago
    start = CycleStart(earlier_findings=[slo, v2_drop], opened_at=T - 4700, onset=T - 4800)
    story = correlate("m", Detection(findings=[slo, ctr(T - 1500)]), [], start, [v2, v3], W, CorrelationSettings())
    assert story.content is not None
    assert [f.onset for f in story.content.findings if f.kind == FindingKind.KPI_DROP] == [T - 1500]
    assert story.content.causes[0].entity == "m v3", [(c.entity, round(c.score, 2)) for c in story.content.causes]
    told = OpenIncident(Severity.CRITICAL, "d0", T - 600, None, False, told_severity=Severity.CRITICAL)
    history = ModelHistory(open_incident=told, last_deploy_at=v3.at, latest_at=T - 60)
    p = plan_alerts(AlertInputs(story.incident, story.content, history, True, T), RULES)
    assert p.tier is not None and any("after deploy of m v3" in r for r in p.tier.reasons), p.tier.reasons
    assert p.rollback is not None and p.rollback.from_version == "3", p.rollback


def test_a_kpi_still_down_through_a_fix_forward_keeps_its_first_onset() -> None:
    """The same, but CTR never came back: v3 did not end what v2 began, and did not begin it."""
    v2 = DeployEvent("m", "champion", "2", "1", T - 5400, "registry")
    v3 = DeployEvent("m", "champion", "3", "2", T - 2400, "response")
    v2_drop = replace(ctr(T - 4800), window_start=T - 4800, window_end=T - 60)  # seen down last cycle
    start = CycleStart(earlier_findings=[v2_drop], opened_at=T - 4700, onset=T - 4800)
    story = correlate("m", Detection(findings=[ctr(W.start)]), [], start, [v2, v3], W, CorrelationSettings())
    assert story.content is not None
    assert [f.onset for f in story.content.findings if f.kind == FindingKind.KPI_DROP] == [T - 4800]
    assert [c.entity for c in story.content.causes if c.kind == "deploy"] == ["m v2"]


def test_a_kpi_back_after_an_earlier_drop_that_falls_after_a_release_is_rolled_back_by_the_daemon(
        tmp_path: Any) -> None:
    """The whole daemon: p99 breaches its SLO from T0 - 80 min and CTR falls with it (no deploy:
    an incident, nothing to roll back); CTR is back from T0 - 60 min, the SLO still breaching. A
    person releases v2 at T0 - 40 min; CTR falls 12 % from T0 - 25 min. The merge dated the new
    drop from the first one, before v2: v2 was no suspect, and its regression stayed."""
    reg = serving_registry(version="1", versions=("1",))
    ctr = lambda ts: np.where((ts >= T0 - 4800) & (ts < T0 - 3600) | (ts >= T0 - 1500), 0.044, 0.05)  # noqa: E731
    vigil = _v2_released_at_t0_minus_40_min(tmp_path, reg, ctr)
    [row] = vigil.store.incidents(model=MODEL)
    top = vigil.store.incident(row.id).causes[0]
    assert (top["kind"], top["entity"]) == ("deploy", f"{MODEL} v2"), top
    assert reg.aliases[(MODEL, "champion")] == "1", reg.moves  # v2 rolled back


def _v2_blamed_after(release: DeployEvent) -> tuple[Cause, list[dict[str, Any]]]:
    """CTR down since 10 min after v2 and still down an hour later, with `release` by a person
    40 min ago: v2's deploy cause, and every cause as the message carries them."""
    v2 = DeployEvent("m", "champion", "2", "1", T - 5400, "registry")
    v2_drop = replace(ctr(T - 4800), window_start=T - 4800, window_end=T - 60)
    start = CycleStart(earlier_findings=[v2_drop], opened_at=T - 4700, onset=T - 4800)
    story = correlate("m", Detection(findings=[ctr(W.start)]), [], start, [v2, release], W, CorrelationSettings())
    assert story.content is not None
    [cause] = [c for c in story.content.causes if c.kind == "deploy"]
    return cause, [c.to_dict() for c in story.content.causes]


def test_a_deploy_a_person_replaced_during_the_incident_is_not_paged_as_the_one_to_roll_back() -> None:
    """CTR down since 10 min after v2 and still down an hour later; on-call released v3 40 min
    ago. v2 began it and stays the suspect, but the page said "roll 'champion' back to v1" and
    offered the button for it, while v3 served: a rollback to v1 now takes v3 out, which the
    page must say, and the button (which could only be refused, "someone moved it since") is gone."""
    from alerts.payload import suggested_action
    from alerts.slack_text import rollback_target

    cause, causes = _v2_blamed_after(DeployEvent("m", "champion", "3", "2", T - 2400, "response"))
    assert cause.entity == "m v2" and cause.evidence["replaced_by"] == "3", cause.evidence
    assert "roll 'champion' back to v1" not in cause.explanation, cause.explanation
    assert "takes v3 out" in cause.explanation, cause.explanation
    assert rollback_target({"causes": causes}) is None
    said = suggested_action(causes, [], "open", "m", serving="3")
    assert "Roll back to v1" not in said and "v3" in said, said


def test_a_deploy_a_person_reverted_during_the_incident_is_paged_as_reverted() -> None:
    """The same with v1 put back by hand 40 min ago: nothing left to roll back, nor a button for it."""
    from alerts.payload import suggested_action
    from alerts.slack_text import rollback_target

    cause, causes = _v2_blamed_after(DeployEvent("m", "champion", "1", "2", T - 2400, "response"))
    assert "went back to v1" in cause.explanation and "takes v1 out" not in cause.explanation, cause.explanation
    assert rollback_target({"causes": causes}) is None
    assert "went back to v1" in suggested_action(causes, [], "open", "m", serving="1")


def test_a_kpi_back_after_a_release_keeps_the_incidents_baseline_where_its_first_drop_was_before_it() -> None:
    """Once CTR's second drop (after v3) replaces its first (before v3) in the story, the KPI
    baseline must stay frozen at the incident's onset: the hour before v3 held the first drop,
    and measured against it v3's drop reads smaller, or as nothing."""
    from correlators.causes import merge_findings

    v3 = DeployEvent("m", "champion", "3", "2", T - 2400, "response")
    first = replace(ctr(T - 4800), window_start=T - 4800, window_end=T - 3000)
    story = merge_findings([first], [ctr(T - 1500)], [v3.at])
    assert [f.onset for f in story] == [T - 1500]  # the new episode, the release's
    assert released_into("m", T - 4800, story, [v3]) is None


def _v2_rolled_back_then_v3_released(tmp_path: Any, **sections: Any) -> tuple[Any, Any]:
    """v2 at T0 - 90 min; CTR (with p99) drops 10 min later and recovers at T0 - 60 min, p99 stays
    up; v3 released at T0 - 40 min and CTR falls again 15 min after it. Cycles every minute to T0 + 10 min."""
    reg = serving_registry(version="1", versions=("1", "2"))
    ctr = lambda ts: np.where((ts >= T0 - 4800) & (ts < T0 - 3600) | (ts >= T0 - 1500), 0.044, 0.05)  # noqa: E731
    prom = StubPrometheus({CTR_QUERY: ctr, P99_QUERY: step_curve(0.1, 0.8, T0 - 4800)})
    vigil = make_vigil(make_config(tmp_path, **sections), prometheus=prom, registry=reg, start=T0 - 5460)
    for t in range(int(T0 - 5460), int(T0 + 600), 60):
        if t == T0 - 5400:
            reg.aliases[(MODEL, "champion")] = "2"
        if t == T0 - 2400:
            reg.add_version(MODEL, "3", created_at=T0 - 2500)
            reg.aliases[(MODEL, "champion")] = "3"
        vigil.run_cycle(MODEL, float(t))
    return vigil, reg


def test_a_release_after_vigils_rollback_that_regresses_in_the_same_incident_is_rolled_back_too(
        tmp_path: Any) -> None:
    """v2 at T0 - 90 min; CTR and p99 regress 10 min later and Vigil rolls v2 back to v1. CTR
    recovers, p99 does not (the incident stays open). A person releases v3 at T0 - 40 min and CTR
    falls 15 min after it: v3 is the top cause, but the incident's rollback counted as settled
    by v2's, so nothing was asked of v3, not even a refusal, and the message told on-call to
    "confirm the KPIs recover with v3"."""
    vigil, reg = _v2_rolled_back_then_v3_released(tmp_path, policy={"rollback": {"cooldown": "30m"}})
    [row] = vigil.store.incidents(model=MODEL)
    assert vigil.store.incident(row.id).causes[0]["entity"] == f"{MODEL} v3"
    assert reg.moves == [(MODEL, "champion", "1"), (MODEL, "champion", "1")], reg.moves  # v2, then v3, to v1


def test_a_release_after_vigils_rollback_whose_rollback_is_refused_says_so_and_what_to_do(tmp_path: Any) -> None:
    """As above with the default 6 h cool-down: v3's rollback is refused (v2's was 50 min
    before). The message told on-call to "confirm the KPIs recover with v3", as if nothing
    was wrong with it; it must say v3's rollback was refused, by which guard, and how to roll back."""
    vigil, reg = _v2_rolled_back_then_v3_released(tmp_path)
    [row] = vigil.store.incidents(model=MODEL)
    assert vigil.store.incident(row.id).causes[0]["entity"] == f"{MODEL} v3"
    assert reg.aliases[(MODEL, "champion")] == "3"  # refused: v3 still serves
    message = vigil.store.outbox_for_prefix(f"incident:{row.id}")[-1].payload
    said = message["suggested_action"]
    assert "recover with v3" not in said, said
    assert "v3" in said and "refused" in said and "cool-down" in said and f"/v1/models/{MODEL}/rollback" in said, said
