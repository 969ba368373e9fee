"""Stage 5, apply: the plan written to the store in one transaction: the model's state,
the incident row and its outbox rows commit together or not at all.

A held cycle (the clock went backwards, see alerts.lifecycle.hold) writes nothing but a
note that it ran: its older view of the data must not replace the detectors' state or the
SLO streaks, and the model's last cycle time never moves back.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from alerts.lifecycle import IncidentStatus, Step
from alerts.pipeline import AlertPlan
from alerts.policy import Severity
from correlators.incident import Incident
from monitor.config import ModelConfig
from monitor.cycle.messages import OutboxWriter
from monitor.cycle.plan import routes_of
from monitor.failpoints import failpoint
from monitor.store import blind as blind_store
from monitor.store.repository import IncidentRow, Store

log = logging.getLogger("vigil.apply")


@dataclass(frozen=True)
class StateUpdate:
    """The model's state after this cycle, whatever the plan."""

    slo_streaks: dict[str, int]
    detector_state: dict[str, Any]
    t: float
    blind: list[str] = field(default_factory=list)  # what the cycle could not see (`vigil status` shows it)


@dataclass(frozen=True)
class Applied:
    incident_id: int | None
    status: str | None  # open | resolved
    severity: str | None  # the open incident's severity, None when nothing is open
    opened: bool  # this cycle opened it


def apply_plan(store: Store, outbox: OutboxWriter, m: ModelConfig, plan: AlertPlan, content: Incident | None,
               update: StateUpdate) -> Applied:
    """`content` is the open incident's whole story: what is stored and shown."""
    held = plan.lifecycle.step == Step.HELD
    if held:
        log.warning("%s", plan.lifecycle.note, extra={"model": m.name, "t": update.t})
    with store.tx() as s:
        state = store.model_state(s, m.name)
        if not held:
            state.slo_streaks = update.slo_streaks
            state.detector_state = update.detector_state
        row = _apply_step(store, s, plan, content, m, update.t)
        if row is not None and plan.lifecycle.notify:
            outbox.incident(s, row, plan.channels or routes_of(m).channels(Severity(row.severity)), update.t)
            if plan.digest:
                row.notified_digest = plan.digest
        state.quiet_cycles = plan.lifecycle.quiet_cycles
        state.last_cycle_at = max(update.t, state.last_cycle_at or update.t)
        blind_store.record(s, m.name, update.blind, update.t)
        failpoint("in_apply_tx")
        if row is None:
            return Applied(None, None, None, False)
        open_ = row.status == IncidentStatus.OPEN
        return Applied(row.id, row.status, row.severity if open_ else None, plan.lifecycle.step == Step.OPEN)


def _apply_step(store: Store, s: Session, plan: AlertPlan, incident: Incident | None, m: ModelConfig,
                t: float) -> IncidentRow | None:
    step = plan.lifecycle.step
    if step == Step.NONE:
        return None
    row = store.open_incident(s, m.name)
    if step == Step.HELD:
        return row  # untouched: its severity is still what the cycle reports
    if step == Step.OPEN:
        assert incident is not None and plan.lifecycle.severity is not None
        row = IncidentRow(model=m.name, status=IncidentStatus.OPEN, severity=str(plan.lifecycle.severity),
                          title=incident.title, onset=incident.onset, opened_at=t, updated_at=t,
                          cold_start=bool(plan.tier and plan.tier.cold_start),
                          reasons=plan.tier.reasons if plan.tier else [],
                          findings=[f.to_dict() for f in incident.findings],
                          causes=[c.to_dict() for c in incident.causes], fingerprint=f"model:{m.name}")
        s.add(row)
        s.flush()
    assert row is not None
    if step in (Step.UPDATE, Step.UNCHANGED, Step.REPEAT) and incident is not None:
        row.severity = str(plan.lifecycle.severity)
        row.title = incident.title
        row.findings = [f.to_dict() for f in incident.findings]
        row.causes = [c.to_dict() for c in incident.causes]
        row.reasons = plan.tier.reasons if plan.tier else row.reasons
        row.updated_at = t
    if step == Step.RESOLVE:
        # The lifecycle holds a cycle whose clock went back, so t >= opened_at already; the
        # max keeps a resolution from ever reading as before the opening whatever the caller.
        row.status = IncidentStatus.RESOLVED
        row.resolved_at = max(t, row.opened_at)
        row.updated_at = row.resolved_at
    if step in (Step.OPEN, Step.UPDATE, Step.RESOLVE):
        log.info("incident %s", step, extra={"model": m.name, "incident": row.id, "severity": row.severity})
    return row
