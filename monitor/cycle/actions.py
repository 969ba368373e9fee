"""Stage 6, act: what Vigil does to the world and what people do to incidents: a guarded
rollback (automatic or asked for), ack and silence. Each is audited; a rollback is
audited before it runs and after, recorded as an action and as a deploy event (so the
next registry poll does not mistake Vigil's own alias move for a new deploy), and
announced through the outbox like everything else."""
from __future__ import annotations

import logging
from typing import Any

from alerts.lifecycle import IncidentStatus
from alerts.pipeline import AlertPlan
from alerts.policy import Severity
from alerts.rollback import ActionStatus, RollbackOutcome, execute_rollback
from detectors.records import DeployEvent
from monitor.config import ModelConfig, VigilConfig
from monitor.cycle.messages import OutboxWriter
from monitor.cycle.plan import routes_of
from monitor.metrics import VigilMetrics
from monitor.sources.registry import alias_tag, format_timestamp
from monitor.store.repository import IncidentRow, Store

log = logging.getLogger("vigil.actions")
SLACK_SILENCE_S = 4 * 3600.0


class Operator:
    def __init__(self, config: VigilConfig, store: Store, registry: Any, outbox: OutboxWriter,
                 metrics: VigilMetrics) -> None:
        self.config, self.store, self.registry, self.outbox, self.metrics = config, store, registry, outbox, metrics

    # ------------------------------------------------------------------ rollback
    def follow_plan(self, m: ModelConfig, incident_id: int, plan: AlertPlan, t: float) -> dict[str, Any] | None:
        """Run the rollback the guard allowed, or record why it refused one worth telling."""
        verdict = plan.rollback
        if verdict is None:
            return None
        if not verdict.allowed:
            # Only a critical incident blamed on a deploy makes a refusal worth telling people about.
            if plan.lifecycle.severity == Severity.CRITICAL and verdict.to_version:
                self._record_refusal(m, incident_id, verdict.to_version, verdict.reason, verdict.dry_run, t)
            return None
        assert verdict.to_version is not None
        outcome = self.rollback(m, to_version=verdict.to_version, dry_run=verdict.dry_run,
                                reason=f"automatic: incident {incident_id}: {verdict.reason}", actor="vigil",
                                incident_id=incident_id, now=t)
        return {"status": outcome.status, "from_version": outcome.from_version, "to_version": outcome.to_version,
                "detail": outcome.detail}

    def _record_refusal(self, m: ModelConfig, incident_id: int, to_version: str, reason: str, dry_run: bool,
                        t: float) -> None:
        earlier = self.store.actions(incident_id=incident_id)
        if any(a.status == ActionStatus.REFUSED and a.reason == reason for a in earlier):
            return
        with self.store.tx() as s:
            self.store.add_action(s, model=m.name, kind="rollback", incident_id=incident_id, from_version=None,
                                  to_version=to_version, status=ActionStatus.REFUSED, reason=reason, detail="",
                                  actor="vigil", dry_run=dry_run, at=t)
        self.metrics.rollbacks.labels(m.name, ActionStatus.REFUSED).inc()
        self.store.audit("vigil", "rollback.refused", f"model:{m.name}",
                         {"incident_id": incident_id, "reason": reason, "to_version": to_version}, now=t)

    def rollback(self, m: ModelConfig, *, to_version: str, dry_run: bool, reason: str, actor: str,
                 incident_id: int | None, now: float) -> RollbackOutcome:
        """Move the alias (or pretend to, in a dry run), with audit, action, deploy event and notifications."""
        def audit(action: str, detail: dict[str, Any]) -> Any:
            return self.store.audit(actor, action, f"model:{m.name}", {**detail, "incident_id": incident_id},
                                    now=now)

        outcome = execute_rollback(self.registry, registry_name=m.registry, alias=m.alias, to_version=to_version,
                                   dry_run=dry_run, reason=reason, audit=audit)
        self.metrics.rollbacks.labels(m.name, outcome.status).inc()
        with self.store.tx() as s:
            self.store.add_action(s, model=m.name, kind="rollback", incident_id=incident_id,
                                  from_version=outcome.from_version, to_version=outcome.to_version,
                                  status=outcome.status, reason=reason, detail=outcome.detail, actor=actor,
                                  dry_run=dry_run, at=now)
            if outcome.status == ActionStatus.DONE:
                self.store.add_deploy(s, DeployEvent(m.name, m.alias, to_version, outcome.from_version, now,
                                                     "rollback"))
                state = self.store.model_state(s, m.name)
                state.alias_version = to_version
                state.alias_seen_at = now
                self._tag_alias_move(m, to_version, outcome.from_version, actor, now)
            if outcome.status in (ActionStatus.DONE, ActionStatus.DRY_RUN):
                self.outbox.rollback(s, m.name, {
                    "model": m.name, "from_version": outcome.from_version, "to_version": outcome.to_version,
                    "at": now, "status": outcome.status, "reason": reason, "dry_run": dry_run, "actor": actor,
                    "detail": outcome.detail, "incident_id": incident_id}, now)
            row = s.get(IncidentRow, incident_id) if incident_id is not None else None
            if row is not None and row.status == IncidentStatus.OPEN:
                self.outbox.incident(s, row, routes_of(m).channels(Severity(row.severity)), now)
        log.info("rollback %s", outcome.status, extra={"model": m.name, "to_version": to_version, "actor": actor})
        return outcome

    def _tag_alias_move(self, m: ModelConfig, version: str, previous: str | None, actor: str, now: float) -> None:
        """MLflow keeps no alias history: leave one on the version itself."""
        try:
            for field_name, value in (("set_at", format_timestamp(now)), ("previous", previous or ""),
                                      ("set_by", actor)):
                self.registry.set_version_tag(m.registry, version, alias_tag(m.alias, field_name), value)
        except Exception:  # the move itself succeeded and is in our store and audit log
            log.warning("could not tag alias move on the registry", extra={"model": m.name, "version": version})

    # ------------------------------------------------------------------ people
    def acknowledge(self, incident_id: int, actor: str, now: float) -> IncidentRow:
        """Ack stops repeat reminders (not updates); the message shows who took it."""
        with self.store.tx() as s:
            row = s.get(IncidentRow, incident_id)
            assert row is not None
            if row.acknowledged_by is None:
                row.acknowledged_by = actor
                known = {x.name for x in self.config.models}
                channels = (routes_of(self.config.model(row.model)).channels(Severity(row.severity))
                            if row.model in known else [])
                self.outbox.incident(s, row, channels, now)
        self.store.audit(actor, "incident.ack", f"incident:{incident_id}", {"model": row.model}, now=now)
        return row

    def silence(self, incident_id: int, actor: str, duration_s: float, reason: str, now: float) -> IncidentRow:
        """A silence keeps the incident open and recorded but stops notifications until it
        ends; an escalation to critical still gets through."""
        with self.store.tx() as s:
            row = s.get(IncidentRow, incident_id)
            assert row is not None
            row.silenced_until = now + duration_s
        self.store.audit(actor, "incident.silence", f"incident:{incident_id}",
                         {"model": row.model, "until": now + duration_s, "reason": reason}, now=now)
        return row

    def slack_action(self, action: Any, now: float) -> str:
        """A button in the incident message: ack, silence (4 h) or rollback (guarded, audited)."""
        actor = f"slack:{action.user_name or action.user_id}"
        row = self.store.incident(action.incident_id)
        if row is None or row.model != action.model:
            return f"Incident {action.incident_id} of {action.model} not found."
        if action.action_id == "ack":
            self.acknowledge(row.id, actor, now)
            return f"Acknowledged incident {row.id}."
        if action.action_id == "silence":
            self.silence(row.id, actor, SLACK_SILENCE_S, "silenced from Slack", now)
            return f"Silenced incident {row.id} for 4 h."
        if action.action_id == "rollback":
            deploys = [c for c in row.causes if c.get("kind") == "deploy"]
            target = (deploys[0].get("evidence") or {}).get("previous_version") if deploys else None
            if not target:
                return "No previous version is known for this incident; use the rollback API with to_version."
            outcome = self.rollback(self.config.model(row.model), to_version=str(target), dry_run=False,
                                    reason=f"Slack button on incident {row.id}", actor=actor, incident_id=row.id,
                                    now=now)
            return f"Rollback {outcome.status}: {outcome.detail}"
        return f"Unknown action {action.action_id!r}."
