"""Stage 5, apply: the plan written to the store in one transaction: the model's state,
the incident row and its outbox rows commit together or not at all (and a clean cycle's
count for the serving version, monitor/cycle/known_good.py).

A held cycle (the clock went backwards, see alerts.lifecycle.hold) writes nothing but a
note that it ran: its older view of the data must not replace the detectors' state or the
SLO streaks, and the model's last cycle time never moves back.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.orm import Session

from alerts.lifecycle import IncidentStatus, LifecycleDecision, Step, last_told, told_digest
from alerts.pipeline import AlertPlan
from alerts.policy import Severity
from correlators.incident import Incident
from monitor.config import ModelConfig
from monitor.cycle.grouping import Grouper
from monitor.cycle.messages import OutboxWriter
from monitor.cycle.plan import Replan, open_state, routes_of
from monitor.failpoints import failpoint
from monitor.store import intents, silences
from monitor.store.repository import IncidentRow, Store
from monitor.store.tables import locked_row

log = logging.getLogger("vigil.apply")


@dataclass(frozen=True)
class StateUpdate:
    """The model's state after this cycle, whatever the plan."""

    slo_streaks: dict[str, int]
    detector_state: dict[str, Any]
    t: float
    clean_version: str | None = None  # the serving version, when the cycle was blind to nothing


@dataclass(frozen=True)
class Applied:
    incident_id: int | None
    status: str | None  # open | resolved
    severity: str | None  # the open incident's severity, None when nothing is open
    opened: bool  # this cycle opened it
    plan: AlertPlan  # the plan as applied: made again when the incident changed since it was planned


def apply_plan(store: Store, outbox: OutboxWriter, m: ModelConfig, plan: AlertPlan, content: Incident | None,
               update: StateUpdate, grouper: Grouper | None = None, replan: Replan | None = None) -> Applied:
    """`content` is the open incident's whole story: what is stored and shown. `replan`
    (plan.planner) plans again for the open incident as read under its lock."""
    held = (planned := plan.lifecycle.step) == Step.HELD  # `planned`: before any re-plan
    if held:
        log.warning("%s", plan.lifecycle.note, extra={"model": m.name, "t": update.t})
    if grouper is not None and not held:
        grouper.prepare(plan, update.t)
    with store.tx() as s:
        state = store.model_state(s, m.name)
        if not held:
            state.slo_streaks = update.slo_streaks
            store.save_detector_state(s, m.name, update.detector_state)
        locked, plan = _lock_and_replan(store, s, m.name, plan, replan, update.t)
        row = _apply_step(s, locked, plan, content, m, update.t)
        hold = grouper.member_cycle(s, row, plan, update.t) if grouper and row is not None and not held else None
        if row is not None and not held and row.status == IncidentStatus.OPEN:
            # what keeps it quiet now; a resolved incident keeps what muted it last
            _record_muting(row, plan.muted_by + ([hold] if hold else []))
        if row is not None and not held and _held_by_shared_cause(plan, hold):
            outbox.receivers_only(s, row, update.t)
        if row is not None and plan.lifecycle.notify and hold is None:
            told_before = row.last_notified_at is not None
            told_severity = last_told(row.notified_digest, row.severity)
            change = _change(plan)
            acked = Severity(row.acknowledged_severity or told_severity)  # an ack from before 0007: as told
            if change == "escalated" and row.acknowledged_by is not None and acked.rank < Severity(row.severity).rank:
                _ack_lapses(row, acked, m.name, update.t)
            # A resolve shows the severity people were told: an escalation a mute held back
            # was never news to anyone, and "resolved" must not announce it.
            resolve = plan.lifecycle.step == Step.RESOLVE
            shown = str(told_severity) if resolve else None
            channels = plan.channels or routes_of(m).channels(told_severity)
            # A resolve closes the messages people have, wherever the routes point now (a
            # reload that moved owner_channel left the old one showing it open for ever); an
            # update also keeps them current (the new channels get the message itself).
            channels = outbox.edit_channels(s, row, channels) if resolve else outbox.with_told(s, row, channels)
            outbox.incident(s, row, channels, update.t, held=False, shown=shown)
            if plan.digest:
                row.notified_digest = told_digest(plan.digest, row.severity)
            if change and told_before:
                # Reply where the message already was: the channels of the severity last told.
                before = Severity.WARNING if change == "escalated" else told_severity
                outbox.reply(s, row, channels if resolve else routes_of(m).channels(before), change, str(before),
                             update.t)
            if change or not told_before:
                # A first message or a reply told people. Only an edit of a message people
                # have notifies no one: the repeat_interval reminder still counts from the
                # last message that told someone.
                row.last_notified_at = update.t
        state.quiet_cycles = plan.lifecycle.quiet_cycles
        state.last_cycle_at = max(update.t, state.last_cycle_at or update.t)
        if update.clean_version is not None and _leaves_nothing_open(row, planned):
            intents.mark_clean(s, m.name, update.clean_version, update.t)  # nothing open: a clean cycle
        failpoint("in_apply_tx")
        if row is None:
            return Applied(None, None, None, False, plan)
        open_ = row.status == IncidentStatus.OPEN
        return Applied(row.id, row.status, row.severity if open_ else None, plan.lifecycle.step == Step.OPEN, plan)


MUTED_PREFIX = "muted: "
FINGERPRINT_CHARS = 64  # incidents.fingerprint is VARCHAR(64), which PostgreSQL enforces


def fingerprint(model: str) -> str:
    """`model:<name>`, or for a name too long for the column (over 58 of its 100 characters)
    `model:` and the start of the name's SHA-256: PostgreSQL refused the row, so such a model
    could never open an incident there."""
    plain = f"model:{model}"
    if len(plain) <= FINGERPRINT_CHARS:
        return plain
    return "model:" + hashlib.sha256(model.encode()).hexdigest()[:FINGERPRINT_CHARS - len("model:")]


def _record_muting(row: IncidentRow, muted_by: list[str]) -> None:
    """What keeps the incident from paging, shown with its reasons (API, replay output)."""
    kept = [r for r in (row.reasons or []) if not (isinstance(r, str) and r.startswith(MUTED_PREFIX))]
    row.reasons = kept + [MUTED_PREFIX + why for why in dict.fromkeys(muted_by)]


def _ack_lapses(row: IncidentRow, acked: Severity, model: str, t: float) -> None:
    """An ack covers the severity it was given at (the one people were told): an escalation
    above it is news, as a new, higher-severity alert is in PagerDuty or Alertmanager. Kept,
    the owner's ack of a warning stopped the critical's repeats and acknowledged the on-call's
    fresh page on the owner's behalf; now the critical waits for its own ack."""
    log.info("escalation to %s: the ack of the %s by %s no longer covers the incident", row.severity, acked,
             row.acknowledged_by, extra={"model": model, "incident": row.id, "t": t})
    row.acknowledged_by = None
    row.acknowledged_severity = None


def _locked_open_incident(store: Store, s: Session, model: str) -> IncidentRow | None:
    """The model's open incident, locked until the cycle commits and read again once locked.

    An ack (monitor/cycle/actions.py) locks the row too: one committed while the cycle
    held a plain read queued the cycle's message built from the row before it, and
    PagerDuty was sent the escalation of an acknowledged incident under a new key (`~2`)
    that nobody acknowledged. Now the ack is either in the row the cycle writes from, or
    waits and comes after the cycle's messages."""
    row = store.open_incident(s, model)
    if row is None:
        return None
    row = locked_row(s, IncidentRow, row.id)
    if row is None or row.status != IncidentStatus.OPEN:  # resolved meanwhile (a removed model's)
        return store.open_incident(s, model)
    return row


def _lock_and_replan(store: Store, s: Session, model: str, plan: AlertPlan,
                     replan: Replan | None, t: float) -> tuple[IncidentRow | None, AlertPlan]:
    """The open incident locked, and the plan for it as read now. An ack (or the incident's own
    silence, or its shared cause's page) that committed after the plan was made and before this lock is in
    the row: planned from the row before it, the on-call who had just taken the incident got
    its reminder. An escalation above the severity acknowledged still pages (the ack lapses).
    The live silences are read again too: the Slack "Silence" button writes a label silence
    under this same row lock, and one pressed in between let the planned reminder out."""
    if plan.lifecycle.step == Step.NONE:
        return None, plan  # nothing open when planned, and only this model's cycle opens one
    row = _locked_open_incident(store, s, model)
    if row is None and plan.lifecycle.step not in (Step.OPEN, Step.HELD):
        return None, _resolved_meanwhile(plan, model, t)
    if replan is None or row is None:
        return row, plan
    return row, replan(open_state(row), tuple(silences.live(s, t)))


def _resolved_meanwhile(plan: AlertPlan, model: str, t: float) -> AlertPlan:
    """The incident planned for was resolved after the plan was made (a model removed from the
    configuration, monitor/cycle/removed.py): whoever resolved it told people, so this cycle
    writes and sends nothing for it, not even its own planned resolve. The next cycle plans
    from no open incident."""
    log.info("incident resolved before this cycle could write its %s: nothing sent", plan.lifecycle.step,
             extra={"model": model, "t": t})
    return replace(plan, lifecycle=LifecycleDecision(Step.RESOLVED_ELSEWHERE, None, False, 0, "resolved meanwhile"),
                   channels=[], rollback=None)


def _leaves_nothing_open(row: IncidentRow | None, planned: Step) -> bool:
    """Whether the cycle counts as clean for the serving version. An incident that someone
    else resolved meanwhile counts only when this cycle would have resolved it too: one that
    still saw the regression (an update, a reminder) is not a clean cycle."""
    if row is not None:
        return row.status != IncidentStatus.OPEN
    return planned in (Step.NONE, Step.HELD, Step.RESOLVE)


def _held_by_shared_cause(plan: AlertPlan, hold: str | None) -> bool:
    """A change that would have paged but for a shared cause alone (its group, or the
    default rule that lets the group speak for its members): silences and maintenance
    windows are not that, and hold back receivers too."""
    changed = plan.lifecycle.step in (Step.OPEN, Step.UPDATE, Step.RESOLVE)
    if not changed or (plan.lifecycle.notify and hold is None):
        return False
    if plan.lifecycle.step == Step.RESOLVE:
        return True  # whatever held it in chat, a receiver that paged must hear it resolved
    reasons = plan.muted_by + ([hold] if hold else [])
    return bool(reasons) and all("shared cause" in r or "SharedCause" in r for r in reasons)


def _change(plan: AlertPlan) -> str | None:
    """A state change that deserves a threaded reply: people are told, not just the message edited."""
    if plan.lifecycle.step == Step.RESOLVE:
        return "resolved"
    if plan.lifecycle.step == Step.UPDATE and plan.lifecycle.note == "escalated":
        return "escalated"
    if plan.lifecycle.step == Step.REPEAT:
        return "repeated"  # repeat_interval reminds people: an edit alone notifies no one
    return None


def _apply_step(s: Session, row: IncidentRow | None, plan: AlertPlan, incident: Incident | None, m: ModelConfig,
                t: float) -> IncidentRow | None:
    """`row`: the model's open incident, locked (`_locked_open_incident`)."""
    step = plan.lifecycle.step
    if step in (Step.NONE, Step.RESOLVED_ELSEWHERE):
        return None
    if step == Step.HELD:
        return row  # untouched: its severity is still what the cycle reports
    if step == Step.OPEN:
        assert incident is not None and plan.lifecycle.severity is not None
        row = IncidentRow(model=m.name, status=IncidentStatus.OPEN, severity=str(plan.lifecycle.severity),
                          title=incident.title, onset=incident.onset, opened_at=t, updated_at=t,
                          cold_start=bool(plan.tier and plan.tier.cold_start),
                          reasons=plan.tier.reasons if plan.tier else [],
                          findings=[f.to_dict() for f in incident.findings],
                          causes=[c.to_dict() for c in incident.causes], fingerprint=fingerprint(m.name))
        s.add(row)
        s.flush()
    assert row is not None
    if step in (Step.UPDATE, Step.UNCHANGED, Step.REPEAT) and incident is not None:
        rises = plan.lifecycle.severity is not None and plan.lifecycle.severity.rank > Severity(row.severity).rank
        if rises and row.acknowledged_by is not None:  # told later, or by its shared cause's page
            _ack_lapses(row, Severity(row.severity), m.name, t)
        row.severity = str(plan.lifecycle.severity)
        row.title = incident.title
        row.findings = [f.to_dict() for f in incident.findings]
        row.causes = [c.to_dict() for c in incident.causes]
        row.reasons = plan.tier.reasons if plan.tier else row.reasons
        if plan.tier is not None:  # a cold start ends (or a new deploy starts one) while it is open
            row.cold_start = plan.tier.cold_start
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
