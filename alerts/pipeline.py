"""The alert path as a chain of small stages, assembled in one place (Alertmanager's
notify pipeline is the model):

    ALERT_CHAIN = tier -> inhibit -> silence -> lifecycle -> route -> rollback guard

Inhibit and silence only mute: a muted incident still opens, updates and resolves, and
is recorded with what muted it (`AlertPlan.muted_by`); it pages no one. Silences match
the incident's labels (alerts/labels.py), maintenance windows are the model's active
`mute_time_intervals`, and inhibition asks whether another firing alert (a source that
is down, another model's critical, a shared cause) covers this one.

Each stage reads the cycle's inputs and the plan so far and returns the plan with its
own part filled in. The chain is pure: monitor/cycle/apply.py writes the finished plan
to the store (incident and outbox rows in one transaction), and notifiers, which know
nothing of policy, deliver it later.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from alerts.inhibition import DEFAULT_RULES, InhibitRule, inhibitor
from alerts.labels import incident_labels
from alerts.lifecycle import (
    LifecycleDecision,
    LifecycleSettings,
    OpenIncident,
    Step,
    clock_went_back,
    decide,
    hold,
    is_muted,
)
from alerts.matchers import Labels, LabelValue
from alerts.policy import (
    Policy,
    RollbackVerdict,
    Severity,
    TierDecision,
    assign_tier,
    check_rollback,
    stalled_regressions,
)
from alerts.routing import Routes
from alerts.silences import Silence, muting
from correlators.incident import Incident
from detectors.records import json_safe


@dataclass(frozen=True)
class AlertRules:
    """A model's alerting configuration."""

    policy: Policy
    lifecycle: LifecycleSettings
    routes: Routes
    inhibit_rules: tuple[InhibitRule, ...] = DEFAULT_RULES
    labels: dict[str, str] = field(default_factory=dict)  # the model's own labels (vigil.yaml)


@dataclass(frozen=True)
class Suppression:
    """What may mute this cycle's messages, read from the store and the clock by the shell."""

    silences: tuple[Silence, ...] = ()  # live silences (active or pending)
    maintenance: tuple[str, ...] = ()  # the model's mute_time_intervals active now
    firing: tuple[Labels, ...] = ()  # other alerts firing now: sources down, other models, shared causes


@dataclass(frozen=True)
class ModelHistory:
    """What the store knew about the model when the cycle began."""

    open_incident: OpenIncident | None = None
    last_deploy_at: float | None = None
    slo_streaks: dict[str, int] = field(default_factory=dict)  # consecutive breached cycles, this one included
    quiet_cycles: int = 0
    recent_rollbacks: list[float] = field(default_factory=list)
    rollback_done_for_incident: bool = False
    # The latest time the model's history holds (last cycle, the open incident's opening and
    # last update): a cycle before it means the clock went backwards.
    latest_at: float | None = None


@dataclass(frozen=True)
class AlertInputs:
    """`candidate` is this cycle's incident (is something wrong now?); `content` the
    open incident's whole story (what is shown, and what a rollback is judged on)."""

    candidate: Incident | None
    content: Incident | None
    history: ModelHistory
    data_complete: bool
    now: float
    suppression: Suppression = Suppression()
    # signals this cycle read from a partial answer (a store missed) -> why: no automatic rollback
    partial: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AlertPlan:
    tier: TierDecision | None = None
    digest: str | None = None
    labels: dict[str, LabelValue] = field(default_factory=dict)  # what silences and inhibit rules see
    muted: bool = False  # a silence, a maintenance window or an inhibition holds back this cycle's messages
    muted_by: list[str] = field(default_factory=list)  # what muted it, in words (stored with the incident)
    lifecycle: LifecycleDecision = LifecycleDecision(Step.NONE, None, False, 0)
    channels: list[str] = field(default_factory=list)
    rollback: RollbackVerdict | None = None


Stage = Callable[[AlertInputs, AlertRules, AlertPlan], AlertPlan]


def incident_digest(incident: Incident, severity: Severity | None) -> str:
    """What, if it changes, deserves a new notification: severity, which things are
    wrong, the top cause, and a deploy's KPI drop that can no longer turn critical (its traffic
    stopped before it held). Small value changes do not re-notify."""
    body: dict[str, object] = {
        "severity": str(severity),
        "findings": sorted({(str(f.kind), f.entity) for f in incident.findings}),
        "top": (str(incident.top_cause.kind), incident.top_cause.entity) if incident.top_cause else None,
    }
    if stalled := stalled_regressions(incident):  # only then: every other incident's digest stays as stored
        body["no_traffic"] = stalled
    return hashlib.sha256(json.dumps(json_safe(body), sort_keys=True).encode()).hexdigest()[:32]


def now_reads(inp: AlertInputs, rules: AlertRules) -> TierDecision | None:
    """What this cycle's findings read, blamed on the whole story's causes: the ones shown, and
    the ones the rollback guard judges. With this cycle's own causes (a window of 30 minutes)
    a deploy 40 minutes ago was blamed for a KPI down since days before it (its baseline frozen
    there): critical "after deploy of m v2", and a guard that refused, the story blaming none."""
    cand, content, h = inp.candidate, inp.content or inp.candidate, inp.history
    if cand is None or content is None:
        return None
    return assign_tier(replace(content, findings=cand.findings), rules.policy, now=inp.now,
                       last_deploy_at=h.last_deploy_at, slo_streaks=h.slo_streaks)


def tier_stage(inp: AlertInputs, rules: AlertRules, plan: AlertPlan) -> AlertPlan:
    """Severity from this cycle's findings, raised (never lowered) by the whole story's."""
    cand, content, h = inp.candidate, inp.content or inp.candidate, inp.history
    tier = now_reads(inp, rules)
    if cand is None or tier is None:
        return plan
    if tier.severity is not None and content is not None and content is not cand:
        whole = assign_tier(content, rules.policy, now=inp.now, last_deploy_at=h.last_deploy_at,
                            slo_streaks=h.slo_streaks)
        if whole.severity is not None and whole.severity.rank > tier.severity.rank:
            tier = whole
    # The digest carries the severity the incident will have (it never drops while open), not
    # this cycle's: a cycle that reads only a warning of a critical incident changes nothing told.
    held = h.open_incident.severity if h.open_incident else None
    sev = max((s for s in (tier.severity, held) if s), key=lambda s: s.rank) if tier.severity else None
    digest = incident_digest(content, sev) if content is not None else None
    return replace(plan, tier=tier, digest=digest)


def alert_labels(inp: AlertInputs, rules: AlertRules, plan: AlertPlan) -> dict[str, LabelValue]:
    """The incident's labels at the severity it would have after this cycle."""
    content = inp.content or inp.candidate
    if content is None:
        return {}
    sev = [s for s in ((plan.tier.severity if plan.tier else None),
                       (inp.history.open_incident.severity if inp.history.open_incident else None)) if s]
    severity = max(sev, key=lambda s: s.rank) if sev else None
    return incident_labels(content.model, str(severity) if severity else None,
                           [f.to_dict() for f in content.findings], [c.to_dict() for c in content.causes],
                           rules.labels)


def inhibit_stage(inp: AlertInputs, rules: AlertRules, plan: AlertPlan) -> AlertPlan:
    labels = alert_labels(inp, rules, plan)
    plan = replace(plan, labels=labels)
    if not labels:
        return plan
    found = inhibitor(labels, inp.suppression.firing, rules.inhibit_rules)
    return replace(plan, muted=True, muted_by=[*plan.muted_by, found.describe()]) if found else plan


def silence_stage(inp: AlertInputs, rules: AlertRules, plan: AlertPlan) -> AlertPlan:
    """Silences that match the labels, the model's maintenance windows, and the older
    per-incident silence (which lets an escalation through)."""
    by = list(plan.muted_by)
    if plan.labels:
        by += [s.describe() for s in muting(inp.suppression.silences, plan.labels, inp.now)]
        by += [f"maintenance window {n}" for n in inp.suppression.maintenance]
    if is_muted(inp.history.open_incident, plan.tier, inp.now):
        by.append("incident silenced until "
                  f"{inp.history.open_incident.silenced_until if inp.history.open_incident else '?'}")
    return replace(plan, muted=bool(by), muted_by=by)


def lifecycle_stage(inp: AlertInputs, rules: AlertRules, plan: AlertPlan) -> AlertPlan:
    """The lifecycle's decision; a cycle whose clock went backwards is held (same rule in replay and live)."""
    h = inp.history
    if h.latest_at is not None and clock_went_back(inp.now, h.latest_at):
        return replace(plan, lifecycle=hold(h.open_incident, h.quiet_cycles, inp.now, h.latest_at))
    step = decide(h.open_incident, plan.tier, digest=plan.digest, quiet_cycles=h.quiet_cycles,
                  data_complete=inp.data_complete, now=inp.now, settings=rules.lifecycle, muted=plan.muted)
    return replace(plan, lifecycle=step)


def route_stage(inp: AlertInputs, rules: AlertRules, plan: AlertPlan) -> AlertPlan:
    step = plan.lifecycle
    severity = step.severity
    if step.step == Step.RESOLVE and inp.history.open_incident is not None:
        # A resolve goes where the incident was told: a channel never told of it (its
        # escalation came under a silence) gets no "resolved" for what it never saw.
        severity = inp.history.open_incident.told_severity or severity
    return replace(plan, channels=rules.routes.channels(severity) if step.notify else [])


def rollback_guard_stage(inp: AlertInputs, rules: AlertRules, plan: AlertPlan) -> AlertPlan:
    content = inp.content or inp.candidate
    ongoing = plan.lifecycle.step in (Step.OPEN, Step.UPDATE, Step.UNCHANGED, Step.REPEAT)
    if content is None or not ongoing or inp.history.rollback_done_for_incident:
        return plan
    # Judged on what this cycle's findings read, not on the incident's severity (it never drops
    # while open): a rollback refused earlier (cool-down, maintenance, fleet cap) must not go
    # ahead once the regression has gone, only "after it, if still critical". The causes are
    # the whole story's: this cycle's alone date the onset inside its window, and hours after
    # the deploy it would no longer be a suspect of a regression still there.
    h, reads = inp.history, now_reads(inp, rules)
    verdict = check_rollback(content, reads.severity if reads else None, rules.policy.rollback,
                             now=inp.now, recent_rollbacks=h.recent_rollbacks, maintenance=inp.suppression.maintenance,
                             partial=inp.partial)
    return replace(plan, rollback=verdict)


ALERT_CHAIN: tuple[Stage, ...] = (tier_stage, inhibit_stage, silence_stage, lifecycle_stage, route_stage,
                                  rollback_guard_stage)


def plan_alerts(inp: AlertInputs, rules: AlertRules, chain: tuple[Stage, ...] = ALERT_CHAIN) -> AlertPlan:
    plan = AlertPlan()
    for stage in chain:
        plan = stage(inp, rules, plan)
    return plan
