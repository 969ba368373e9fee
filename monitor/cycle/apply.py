"""The shell around alerts/pipeline.py: apply a plan to the store, transactionally.

An incident change and its outbox rows commit together. A rollback is audited before
it runs and after, recorded as an action and as a deploy event (so the next registry
poll does not mistake Vigil's own alias move for a new deploy), and announced through
the outbox like everything else.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from alerts.lifecycle import LifecycleSettings, OpenIncident, Step
from alerts.outbox import MessageKind
from alerts.pipeline import AlertPlan, Routes, incident_payload, plan_alerts
from alerts.policy import Policy, RollbackGuard, Severity
from alerts.rollback import RollbackOutcome, execute_rollback
from correlators.incident import Incident
from detectors.records import DeployEvent, FindingKind
from monitor.config import ModelConfig, PolicyConfig
from monitor.store.repository import IncidentRow

if TYPE_CHECKING:
    from monitor.vigil import CycleReport, Vigil
    from monitor.cycle.gather import Signals

log = logging.getLogger("vigil.alerting")
DEFAULT_CHANNEL = "#vigil-alerts"


def to_policy(p: PolicyConfig) -> Policy:
    r = p.rollback
    return Policy(drift_warning=p.drift_warning, drift_critical=p.drift_critical,
                  kpi_drop_pct=p.kpi_drop_critical_pct, slo_consecutive_cycles=p.slo_consecutive_cycles,
                  cold_start=p.cold_start,
                  rollback=RollbackGuard(enabled=r.enabled, dry_run=r.dry_run, cooldown=r.cooldown,
                                         max_per_day=r.max_per_day, min_confidence=r.min_confidence))


def record_deploys(vigil: "Vigil", m: ModelConfig, current: str | None, t: float) -> list[DeployEvent]:
    """Diff the alias against the last state we stored; a move is a deploy event at `t`."""
    from monitor.sources.registry import detect_alias_move

    with vigil.store.tx() as s:
        state = vigil.store.model_state(s, m.name)
        last = state.alias_version
        if current is None or current == last:
            return []
        if last is None:
            # First sight of this model: we cannot know when the alias moved, so date it by
            # the version's own registration time (recorded tag first, MLflow's time else).
            at = _version_time(vigil, m, current, t)
            event = DeployEvent(m.name, m.alias, current, None, at, "observed")
        else:
            event = detect_alias_move(model=m.name, alias=m.alias, last_known=last, current=current, at=t)
            if event is None:
                return []
        vigil.store.add_deploy(s, event)
        state.alias_version = current
        state.alias_seen_at = t
        if event.source != "observed" and "grafana" in vigil.notifiers:
            vigil.store.enqueue(s, "grafana", MessageKind.DEPLOY, f"deploy:{m.name}:{current}:{int(t)}",
                                {"model": m.name, "alias": m.alias, "version": current,
                                 "previous_version": event.previous_version, "at": event.at}, t)
    log.info("deploy observed", extra={"model": m.name, "version": current, "previous": last, "at": event.at})
    return [event]


def _version_time(vigil: "Vigil", m: ModelConfig, version: str, fallback: float) -> float:
    """The version's registration time (`created_at` already prefers the recorded
    `vigil.created_at` tag over MLflow's own timestamp)."""
    try:
        return min(vigil.registry.get_version(m.registry, version).created_at, fallback)
    except Exception:  # noqa: BLE001 - a missing time only loses cold-start precision
        return fallback


def _open_state(row: IncidentRow | None) -> OpenIncident | None:
    if row is None:
        return None
    return OpenIncident(severity=Severity(row.severity), digest=row.notified_digest,
                        last_notified_at=row.last_notified_at, silenced_until=row.silenced_until,
                        acknowledged=row.acknowledged_by is not None)


def links(vigil: "Vigil", model: str, incident_id: int, has_drift: bool) -> dict[str, str | None]:
    g = vigil.config.grafana
    base = g.public_url or g.url
    api = vigil.config.api
    api_base = api.public_url or f"http://{api.host}:{api.port}"
    grafana = None
    if base:
        from dashboards.uids import model_dashboard_uid

        grafana = f"{base.rstrip('/')}/d/{model_dashboard_uid(model)}"
    return {
        "grafana": grafana,
        "drift_report": f"{api_base.rstrip('/')}/v1/incidents/{incident_id}/drift-report" if has_drift else None,
    }


def enqueue_incident(vigil: "Vigil", s: Any, row: IncidentRow, channels: list[str], now: float,
                     actions: list[dict[str, Any]]) -> None:
    """One message per incident and channel, keyed so later deliveries update it in place."""
    has_drift = any(f.get("kind") in (FindingKind.FEATURE_DRIFT, FindingKind.PREDICTION_DRIFT) for f in row.findings)
    for channel in channels or [DEFAULT_CHANNEL]:
        payload = incident_payload(
            incident_id=row.id, model=row.model, severity=row.severity, status=row.status, title=row.title,
            channel=channel, opened_at=row.opened_at, updated_at=now, resolved_at=row.resolved_at,
            acknowledged_by=row.acknowledged_by, findings=row.findings, causes=row.causes, actions=actions,
            links=links(vigil, row.model, row.id, has_drift), cold_start=row.cold_start)
        for name in vigil.notifiers:
            if name == "grafana":
                continue
            vigil.store.enqueue(s, name, MessageKind.INCIDENT, f"incident:{row.id}:{channel}", payload, now)
    if "grafana" in vigil.notifiers:
        vigil.store.enqueue(s, "grafana", MessageKind.INCIDENT, f"incident:{row.id}",
                            {"incident_id": row.id, "model": row.model, "severity": row.severity,
                             "status": row.status, "title": row.title, "opened_at": row.opened_at,
                             "resolved_at": row.resolved_at, "summary": row.title}, now)
    row.last_notified_at = now


def apply_alerts(vigil: "Vigil", m: ModelConfig, incident: Incident | None, content: Incident | None,
                 sig: "Signals", t: float, serving: str | None) -> "CycleReport":
    """`incident` is this cycle's alone (it decides whether anything is wrong now);
    `content` is the open incident's whole story (what is stored, shown and acted on)."""
    from monitor.vigil import CycleReport

    pcfg = vigil.config.policy_for(m)
    policy = to_policy(pcfg)
    last_deploy = vigil.store.last_deploy(m.name, until=t)
    routes = Routes(m.owner_channel, m.oncall_channel)
    with vigil.store.tx() as s:
        state = vigil.store.model_state(s, m.name)
        streaks = dict(state.slo_streaks or {})
        for name, breached in sig.slo_breached.items():
            streaks[name] = streaks.get(name, 0) + 1 if breached else 0
        state.slo_streaks = streaks
        state.detector_state = sig.detector_state
        open_row = vigil.store.open_incident(s, m.name)
        done_for_incident = open_row is not None and any(
            a.kind == "rollback" and a.status in ("done", "dry_run", "noop")
            for a in vigil.store.actions(incident_id=open_row.id))
        plan = plan_alerts(incident, _open_state(open_row), content=content, policy=policy,
                           lifecycle=LifecycleSettings(pcfg.resolve_after_cycles, pcfg.repeat_interval),
                           routes=routes, now=t, last_deploy_at=last_deploy.at if last_deploy else None,
                           slo_streaks=streaks, quiet_cycles=state.quiet_cycles, data_complete=sig.data_complete,
                           recent_rollbacks=vigil.store.rollback_times(m.name),
                           rollback_already_done=done_for_incident)
        row = _apply_step(vigil, s, m, plan, content, open_row, t)
        state.quiet_cycles = plan.lifecycle.quiet_cycles
        state.last_cycle_at = t
        incident_id = row.id if row is not None else None
        severity = row.severity if row is not None and row.status == "open" else None
    vigil.metrics.set_model_state(m.name, severity)

    rollback = None
    if row is not None and plan.rollback is not None and row.status == "open":
        rollback = _maybe_rollback(vigil, m, row, plan, t)
    # The first cycle that sees drift in an incident renders its report (once: it is slow).
    if row is not None and row.status == "open" and sig.drift_columns and incident is not None and any(
            f.kind in (FindingKind.FEATURE_DRIFT, FindingKind.PREDICTION_DRIFT) for f in incident.findings) \
            and vigil.store.drift_report(row.id) is None:
        _save_drift_report(vigil, m, row.id, sig, serving, t)
    return CycleReport(model=m.name, t=t, findings=sig.findings, incident=incident, step=str(plan.lifecycle.step),
                       severity=severity, incident_id=incident_id, rollback=rollback, blind=sig.blind)


def _apply_step(vigil: "Vigil", s: Any, m: ModelConfig, plan: AlertPlan, incident: Incident | None,
                row: IncidentRow | None, t: float) -> IncidentRow | None:
    step = plan.lifecycle.step
    if step == Step.NONE:
        return None
    if step == Step.OPEN:
        assert incident is not None and plan.lifecycle.severity is not None
        row = IncidentRow(model=m.name, status="open", severity=str(plan.lifecycle.severity), title=incident.title,
                          onset=incident.onset, opened_at=t, updated_at=t,
                          cold_start=bool(plan.tier and plan.tier.cold_start),
                          reasons=plan.tier.reasons if plan.tier else [],
                          findings=[f.to_dict() for f in incident.findings],
                          causes=[c.to_dict() for c in incident.causes], fingerprint=f"model:{m.name}")
        s.add(row)
        s.flush()
        vigil.metrics.incidents_total.labels(m.name, row.severity).inc()
    assert row is not None
    if step in (Step.UPDATE, Step.UNCHANGED, Step.REPEAT) and incident is not None:
        row.severity = str(plan.lifecycle.severity)
        row.title = incident.title
        row.findings = [f.to_dict() for f in incident.findings]
        row.causes = [c.to_dict() for c in incident.causes]
        row.reasons = plan.tier.reasons if plan.tier else row.reasons
        row.updated_at = t
    if step == Step.RESOLVE:
        row.status = "resolved"
        row.resolved_at = t
        row.updated_at = t
    if plan.lifecycle.notify:
        enqueue_incident(vigil, s, row, plan.channels or Routes(m.owner_channel, m.oncall_channel).channels(
            Severity(row.severity)), t, vigil.store.incident_actions(s, row.id))
        if plan.digest:
            row.notified_digest = plan.digest
    if step in (Step.OPEN, Step.UPDATE, Step.RESOLVE):
        log.info("incident %s", step, extra={"model": m.name, "incident": row.id, "severity": row.severity})
    return row


def _maybe_rollback(vigil: "Vigil", m: ModelConfig, row: IncidentRow, plan: AlertPlan, t: float
                    ) -> dict[str, Any] | None:
    verdict = plan.rollback
    assert verdict is not None
    if not verdict.allowed:
        # Only a critical incident blamed on a deploy makes a refusal worth telling people about.
        if plan.lifecycle.severity == Severity.CRITICAL and verdict.to_version:
            refused_before = any(a.status == "refused" and a.reason == verdict.reason
                                 for a in vigil.store.actions(incident_id=row.id))
            if not refused_before:
                with vigil.store.tx() as s:
                    vigil.store.add_action(s, model=m.name, kind="rollback", incident_id=row.id,
                                           from_version=None, to_version=verdict.to_version, status="refused",
                                           reason=verdict.reason, detail="", actor="vigil",
                                           dry_run=verdict.dry_run, at=t)
                vigil.metrics.rollbacks.labels(m.name, "refused").inc()
                vigil.store.audit("vigil", "rollback.refused", f"model:{m.name}",
                                  {"incident_id": row.id, "reason": verdict.reason, "to_version": verdict.to_version},
                                  now=t)
        return None
    assert verdict.to_version is not None
    outcome = rollback_model(vigil, m, to_version=verdict.to_version, dry_run=verdict.dry_run,
                             reason=f"automatic: incident {row.id}: {verdict.reason}", actor="vigil",
                             incident_id=row.id, now=t)
    return {"status": outcome.status, "from_version": outcome.from_version, "to_version": outcome.to_version,
            "detail": outcome.detail}


def rollback_model(vigil: "Vigil", m: ModelConfig, *, to_version: str, dry_run: bool, reason: str, actor: str,
                   incident_id: int | None, now: float) -> RollbackOutcome:
    """Move the alias (or pretend to, in a dry run), with audit, action, deploy event and notifications."""
    target = f"model:{m.name}"

    def audit(action: str, detail: dict[str, Any]) -> Any:
        return vigil.store.audit(actor, action, target, {**detail, "incident_id": incident_id}, now=now)

    outcome = execute_rollback(vigil.registry, registry_name=m.registry, alias=m.alias, to_version=to_version,
                               dry_run=dry_run, reason=reason, audit=audit)
    vigil.metrics.rollbacks.labels(m.name, outcome.status).inc()
    with vigil.store.tx() as s:
        vigil.store.add_action(s, model=m.name, kind="rollback", incident_id=incident_id,
                               from_version=outcome.from_version, to_version=outcome.to_version,
                               status=outcome.status, reason=reason, detail=outcome.detail, actor=actor,
                               dry_run=dry_run, at=now)
        if outcome.status == "done":
            vigil.store.add_deploy(s, DeployEvent(m.name, m.alias, to_version, outcome.from_version, now, "rollback"))
            state = vigil.store.model_state(s, m.name)
            state.alias_version = to_version
            state.alias_seen_at = now
            _tag_alias_move(vigil, m, to_version, outcome.from_version, actor, now)
        payload = {"model": m.name, "from_version": outcome.from_version, "to_version": outcome.to_version,
                   "at": now, "status": outcome.status, "reason": reason, "dry_run": dry_run, "actor": actor,
                   "detail": outcome.detail, "incident_id": incident_id}
        if "grafana" in vigil.notifiers and outcome.status in ("done", "dry_run"):
            vigil.store.enqueue(s, "grafana", MessageKind.ROLLBACK, f"rollback:{m.name}:{int(now)}", payload, now)
        if incident_id is not None:
            row = s.get(IncidentRow, incident_id)
            if row is not None and row.status == "open":
                enqueue_incident(vigil, s, row, Routes(m.owner_channel, m.oncall_channel).channels(
                    Severity(row.severity)), now, vigil.store.incident_actions(s, incident_id))
    log.info("rollback %s", outcome.status, extra={"model": m.name, "to_version": to_version, "actor": actor})
    return outcome


def _tag_alias_move(vigil: "Vigil", m: ModelConfig, version: str, previous: str | None, actor: str,
                    now: float) -> None:
    """MLflow keeps no alias history: leave one on the version itself."""
    try:
        from monitor.sources.registry import alias_tag, format_timestamp

        for field_name, value in (("set_at", format_timestamp(now)), ("previous", previous or ""),
                                  ("set_by", actor)):
            vigil.registry.set_version_tag(m.registry, version, alias_tag(m.alias, field_name), value)
    except Exception:  # noqa: BLE001 - the move itself succeeded and is in our store and audit log
        log.warning("could not tag alias move on the registry", extra={"model": m.name, "version": version})


def _save_drift_report(vigil: "Vigil", m: ModelConfig, incident_id: int, sig: "Signals", serving: str | None,
                       t: float) -> None:
    """Evidently's own report on a bounded sample, stored for GET /v1/incidents/{id}/drift-report."""
    try:
        from detectors.drift import render_drift_report
        from monitor.cycle.gather import current_samples
        from monitor.sources.samples import read_reference

        current = current_samples(vigil, m, t - vigil.config.schedule.lookback, t)
        reference = read_reference(vigil.reference_path(m, serving))
        cols = [c for c in sig.drift_columns if c in current.columns and c in reference.columns]
        html = render_drift_report(reference, current, cols, max_rows=2000, seed=0)
        vigil.store.save_drift_report(incident_id, html, t)
    except Exception:  # noqa: BLE001 - the report is for people; its failure must not cost the alert
        log.exception("drift report failed", extra={"model": m.name, "incident": incident_id})


def acknowledge(vigil: "Vigil", incident_id: int, actor: str, now: float) -> IncidentRow:
    """Ack stops repeat reminders (not updates); the message shows who took it."""
    with vigil.store.tx() as s:
        row = s.get(IncidentRow, incident_id)
        assert row is not None
        if row.acknowledged_by is None:
            row.acknowledged_by = actor
            m = vigil.config.model(row.model) if row.model in {x.name for x in vigil.config.models} else None
            channels = Routes(m.owner_channel, m.oncall_channel).channels(Severity(row.severity)) if m else []
            enqueue_incident(vigil, s, row, channels, now, vigil.store.incident_actions(s, incident_id))
    vigil.store.audit(actor, "incident.ack", f"incident:{incident_id}", {"model": row.model}, now=now)
    return row


def silence_incident(vigil: "Vigil", incident_id: int, actor: str, duration_s: float, reason: str,
                     now: float) -> IncidentRow:
    """A silence keeps the incident open and recorded but stops notifications until it
    ends; an escalation to critical still gets through."""
    with vigil.store.tx() as s:
        row = s.get(IncidentRow, incident_id)
        assert row is not None
        row.silenced_until = now + duration_s
    vigil.store.audit(actor, "incident.silence", f"incident:{incident_id}",
                      {"model": row.model, "until": now + duration_s, "reason": reason}, now=now)
    return row


def handle_slack_action(vigil: "Vigil", action: Any, now: float) -> str:
    """A button in the incident message: ack, silence (4 h) or rollback (guarded, audited)."""
    actor = f"slack:{action.user_name or action.user_id}"
    row = vigil.store.incident(action.incident_id)
    if row is None or row.model != action.model:
        return f"Incident {action.incident_id} of {action.model} not found."
    if action.action_id == "ack":
        acknowledge(vigil, row.id, actor, now)
        return f"Acknowledged incident {row.id}."
    if action.action_id == "silence":
        silence_incident(vigil, row.id, actor, 4 * 3600.0, "silenced from Slack", now)
        return f"Silenced incident {row.id} for 4 h."
    if action.action_id == "rollback":
        m = vigil.config.model(row.model)
        deploys = [c for c in row.causes if c.get("kind") == "deploy"]
        target = (deploys[0].get("evidence") or {}).get("previous_version") if deploys else None
        if not target:
            return "No previous version is known for this incident; use the rollback API with to_version."
        outcome = rollback_model(vigil, m, to_version=str(target), dry_run=False,
                                 reason=f"Slack button on incident {row.id}", actor=actor, incident_id=row.id, now=now)
        return f"Rollback {outcome.status}: {outcome.detail}"
    return f"Unknown action {action.action_id!r}."
