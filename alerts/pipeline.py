"""The alert path in one place, as a chain of small stages (Alertmanager's lesson):

    tier (policy) -> lifecycle (open/update/repeat/resolve, silences) -> routes
    -> rollback guard -> [shell: outbox write in the incident's transaction]
    -> [sender: notifiers] -> [audit around every action]

`plan_alerts` is pure: it returns an `AlertPlan` that monitor/cycle/apply.py applies to
the store in one transaction. Notifiers know nothing of policy and policy nothing of
Slack.
"""
from __future__ import annotations

import hashlib
import json

from dataclasses import dataclass, field
from typing import Any

from alerts.lifecycle import LifecycleDecision, LifecycleSettings, OpenIncident, Step, decide
from alerts.policy import Policy, RollbackVerdict, Severity, TierDecision, assign_tier, check_rollback
from correlators.incident import Incident
from detectors.records import json_safe


@dataclass(frozen=True)
class Routes:
    """Where a model's alerts go."""

    owner_channel: str | None
    oncall_channel: str | None = None

    def channels(self, severity: Severity | None) -> list[str]:
        out = [c for c in (self.owner_channel,) if c]
        if severity == Severity.CRITICAL and self.oncall_channel and self.oncall_channel not in out:
            out.append(self.oncall_channel)
        return out


@dataclass
class AlertPlan:
    tier: TierDecision | None
    lifecycle: LifecycleDecision
    channels: list[str]
    rollback: RollbackVerdict | None
    digest: str | None
    notes: list[str] = field(default_factory=list)


def incident_digest(incident: Incident, severity: Severity | None) -> str:
    """What, if it changes, deserves a new notification: severity, which things are
    wrong, and the top cause. Small value changes do not re-notify."""
    body = {
        "severity": str(severity),
        "findings": sorted({(str(f.kind), f.entity) for f in incident.findings}),
        "top": (str(incident.top_cause.kind), incident.top_cause.entity) if incident.top_cause else None,
    }
    return hashlib.sha256(json.dumps(json_safe(body), sort_keys=True).encode()).hexdigest()[:32]


def plan_alerts(
    candidate: Incident | None,
    open_incident: OpenIncident | None,
    *,
    content: Incident | None = None,
    policy: Policy,
    lifecycle: LifecycleSettings,
    routes: Routes,
    now: float,
    last_deploy_at: float | None,
    slo_streaks: dict[str, int],
    quiet_cycles: int,
    data_complete: bool,
    recent_rollbacks: list[float],
    rollback_already_done: bool,
) -> AlertPlan:
    """`candidate` is this cycle's incident (is something wrong now?); `content` the open
    incident's whole story (what is shown, and what a rollback is judged on)."""
    content = content or candidate
    tier = (assign_tier(candidate, policy, now=now, last_deploy_at=last_deploy_at, slo_streaks=slo_streaks)
            if candidate is not None else None)
    if tier is not None and tier.severity is not None and content is not None and content is not candidate:
        whole = assign_tier(content, policy, now=now, last_deploy_at=last_deploy_at, slo_streaks=slo_streaks)
        if whole.severity is not None and whole.severity.rank > tier.severity.rank:
            tier = whole
    digest = incident_digest(content, tier.severity) if content is not None and tier else None
    step = decide(open_incident, tier, digest=digest, quiet_cycles=quiet_cycles, data_complete=data_complete,
                  now=now, settings=lifecycle)
    channels = routes.channels(step.severity) if step.notify else []
    verdict: RollbackVerdict | None = None
    if content is not None and step.step in (Step.OPEN, Step.UPDATE, Step.UNCHANGED, Step.REPEAT) \
            and not rollback_already_done:
        verdict = check_rollback(content, step.severity, policy.rollback, now=now,
                                 recent_rollbacks=recent_rollbacks)
    return AlertPlan(tier=tier, lifecycle=step, channels=channels, rollback=verdict, digest=digest)


def incident_payload(
    *,
    incident_id: int,
    model: str,
    severity: str,
    status: str,
    title: str,
    channel: str,
    opened_at: float,
    updated_at: float,
    resolved_at: float | None,
    acknowledged_by: str | None,
    findings: list[dict[str, Any]],
    causes: list[dict[str, Any]],
    actions: list[dict[str, Any]],
    links: dict[str, str | None],
    cold_start: bool,
) -> dict[str, Any]:
    """The notification body every notifier renders (Slack blocks, JSON lines, annotations)."""
    return json_safe({
        "incident_id": incident_id,
        "model": model,
        "severity": severity,
        "status": status,
        "title": title,
        "channel": channel,
        "opened_at": opened_at,
        "updated_at": updated_at,
        "resolved_at": resolved_at,
        "acknowledged_by": acknowledged_by,
        "findings": findings,
        "causes": causes,
        "suggested_action": suggested_action(causes, actions, status, model),
        "actions": actions,
        "links": links,
        "cold_start": cold_start,
    })


def suggested_action(causes: list[dict[str, Any]], actions: list[dict[str, Any]], status: str,
                     model: str = "<model>") -> str:
    if status == "resolved":
        return "Nothing to do: the signals are back within their thresholds."
    done = [a for a in actions if a.get("kind") == "rollback" and a.get("status") == "done"]
    if done:
        a = done[-1]
        return (f"Vigil rolled back to v{a['to_version']}. Confirm the KPIs recover, then investigate "
                f"v{a['from_version']} offline before redeploying.")
    if not causes:
        return "No cause stands out: check the linked dashboard and recent changes."
    top = causes[0]
    kind = top.get("kind")
    if kind == "deploy":
        prev = (top.get("evidence") or {}).get("previous_version")
        return (f"Roll back to v{prev} (button below, or POST /v1/models/{model}/rollback) if the deploy is the cause."
                if prev else "Compare the new version with the previous one; roll back if it is the cause.")
    if kind == "gpu_saturation":
        return "Scale out or shed load (cap concurrency / batch size); the model itself did not change."
    if kind == "upstream_drift":
        return "Check the upstream feature pipeline and data sources for the drifted features; no rollback needed."
    if kind == "service":
        return f"Look at {top.get('entity')} first: " + str(top.get("explanation", ""))[:300]
    return "Investigate the top cause."
