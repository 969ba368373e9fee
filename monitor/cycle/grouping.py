"""The shell of one page for a shared cause (the decisions are alerts/grouping.py): in
the transaction that writes a model's incident, join (or leave) the open group of its
top cause, decide whether the group pages, and tell the apply stage whether the
model's own page is held (the group is gathering members, or it pages for them).

The group row is locked in that transaction, so whichever replica runs a member's
cycle, one decision at a time is taken on a group, and its outbox rows commit with it:
a crash repeats nothing and loses nothing.
"""
from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.orm import Session

from alerts.grouping import GroupStep, decide_group, evidence_key, group_key
from alerts.inhibition import inhibitor
from alerts.lifecycle import IncidentStatus, Step, last_told, split_told, told_digest
from alerts.matchers import Labels
from alerts.outbox import MessageKind
from alerts.pipeline import AlertPlan
from alerts.policy import Severity
from detectors.records import partial_read
from monitor.config import VigilConfig
from monitor.cycle.messages import OutboxWriter
from monitor.cycle.plan import routes_of
from monitor.cycle.suppress import (
    group_labels,
    group_muted,
    group_silenced,
    inhibit_rules,
    muted_members,
    row_labels,
)
from monitor.store import groups, silences
from monitor.store.groups import AlertGroupRow, GroupMemberRow
from monitor.store.repository import IncidentRow, Store

log = logging.getLogger("vigil.grouping")
_STAYS_OPEN = (Step.OPEN, Step.UPDATE, Step.UNCHANGED, Step.REPEAT, Step.QUIET)


class Grouper:
    def __init__(self, config: VigilConfig, store: Store, outbox: OutboxWriter) -> None:
        self.config, self.store, self.outbox = config, store, outbox
        self.settings = config.grouping.settings()

    def key(self, plan: AlertPlan, labels: Labels | None = None) -> str | None:
        labels = plan.labels if labels is None else labels
        if plan.lifecycle.step not in _STAYS_OPEN or not labels:
            return None
        return group_key(labels, self.settings)

    def prepare(self, plan: AlertPlan, t: float) -> None:
        """Before the cycle's transaction: make sure the open group for its key exists."""
        key = self.key(plan)
        if key is not None:
            groups.ensure(self.store.tx, key, str(plan.labels.get("cause_kind", "")),
                          str(plan.labels.get("cause", "")), t)

    def member_cycle(self, s: Session, row: IncidentRow, plan: AlertPlan, t: float) -> str | None:
        """In the cycle's transaction. Returns why the model's own page is held, or None."""
        # A quiet cycle has no story of its own: the open incident's stored one says its cause.
        labels = plan.labels or (row_labels(self.config, row) if row.status == IncidentStatus.OPEN else {})
        key = self.key(plan, labels) if row.status == IncidentStatus.OPEN else None
        current = groups.open_group_of(s, row.model, row.id)
        if current is not None and current.open_key != key:
            groups.join(s, current, row.model, row.id, row.severity, False, _summary(row), t)  # left it
            self._settle(s, current, t)
            current = None
        if key is None:
            return None
        group = current or groups.locked(s, key) or groups.create_in(
            s, key, str(labels.get("cause_kind", "")), str(labels.get("cause", "")), t)
        groups.wait_from_first_member(s, group, t)
        groups.join(s, group, row.model, row.id, row.severity, True, _summary(row), t)
        decision = self._settle(s, group, t)
        if decision is None:
            return None
        if decision.holds_members:
            return f"shared cause {group.cause}: waiting {self.settings.group_wait:.0f} s for other models"
        if decision.firing:
            members = groups.members(s, group.id)
            if group_muted(s, self.config, group, members, t):  # a muted group speaks for no one
                return None
            found = inhibitor(labels, [self._labels(s, group, members)], inhibit_rules(self.config))
            return found.describe() if found else None
        return None

    def member_left(self, s: Session, row: IncidentRow, t: float) -> None:
        """In the transaction that resolves `row` outside a cycle (its model left the
        configuration): it leaves its open group, which updates, or resolves and closes."""
        current = groups.open_group_of(s, row.model, row.id)
        if current is not None:
            groups.join(s, current, row.model, row.id, row.severity, False, _summary(row), t)
            self._settle(s, current, t)

    def _labels(self, s: Session, group: AlertGroupRow, members: list[GroupMemberRow]) -> Labels:
        return group_labels(s, self.config, group, members)

    def _settle(self, s: Session, group: AlertGroupRow, t: float) -> Any:
        """Decide the group now; page it (outbox, same transaction) and close it when done."""
        members = groups.members(s, group.id)
        live = silences.live(s, t)  # read once: the three checks below all need it
        # A muted member is listed, but its channels and receivers are not paged for it.
        quiet = muted_members(s, self.config, members, t, live)
        st = groups.state(group, members, quiet)
        decision = decide_group(st, t, self.settings)
        if decision.notify:
            # Muted (its window, or every member muted) or silenced as itself: no page either way.
            muted = (group_muted(s, self.config, group, members, t, live)
                     or group_silenced(s, self.config, group, members, t, live))
            if not muted or decision.step == GroupStep.RESOLVED:
                before = group.notified_severity
                speaking = [m for m in members if m.model not in quiet]
                # The page's severity is its unmuted members': a silenced critical pages no on-call.
                sev = groups.state(group, speaking).severity() if speaking else st.severity()
                payload = self._payload(group, members, decision.step, t, quiet, sev)
                routed, told = self._routes(s, group, speaking, decision.step, sev, before)
                self.outbox.group(s, payload, routed, t)
                self.outbox.group_receivers(s, payload, t)
                change = _change(decision.step, before, sev)
                if change == "repeated" and _all_acknowledged(s, speaking):
                    change = None  # a repeat reminds of what nobody took: every member is acked
                if change:  # people are told in the thread, not only by an edit of the message
                    self.outbox.group_reply(s, payload, told, change, before, t)
                group.notified_at, group.notified_digest = t, decision.digest
                if change or decision.step in (GroupStep.FIRST, GroupStep.REPEAT):
                    # A page or a reply told people (a repeat of an all-acked group is due, and
                    # done): repeat_interval counts from here, never from a mere edit.
                    group.told_at = t
                group.notified_severity = sev
                _told_by_group(s, speaking, sev, group.told_at or t)
                log.info("shared cause %s", decision.step, extra={"group": group.id, "cause": group.cause,
                                                                 "models": [m.model for m in members]})
        if not st.open_members:
            groups.close(group, t)
        return decision

    def _routes(self, s: Session, group: AlertGroupRow, speaking: list[GroupMemberRow], step: GroupStep,
                sev: str, before: str | None) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
        """(routed, told): channel -> members whose on-call it mentions, for the group's
        message and for a reply in its thread (where the message already was)."""
        if step == GroupStep.RESOLVED:
            # Where the group's message is: a channel of a severity it reached after its
            # last page (within group_interval) never had one, and must get no "resolved".
            told = self._channels(speaking, before or sev)
            at_sev = self._told(s, group.id, self._channels(speaking, sev)) or told
            # Every channel that has the message, also one a reload moved a member away from
            # (left showing the shared cause open for ever), and no channel that never had it.
            had = self.store.outbox.told_channels(s, group.id, MessageKind.GROUP)
            routed = told = {c: at_sev.get(c, []) for c in had} or at_sev
            return routed, told
        # A member that resolved is fine: the others' escalation or "still critical" reminder
        # must not page its channels or @-mention its on-call. A channel that has the message
        # for it alone still gets the edit (the member shown resolved), mentioning no one.
        live = [m for m in speaking if m.open] or speaking
        routed, told = self._channels(live, sev), self._channels(live, before or sev)
        gone = self._channels([m for m in speaking if not m.open], str(Severity.CRITICAL))
        for channel in self._told(s, group.id, gone):
            routed.setdefault(channel, [])
        return routed, told

    def _told(self, s: Session, group_id: int, channels: dict[str, list[str]]) -> dict[str, list[str]]:
        """Of `channels`, those that have the group's message (a chat notifier has its key)."""
        chat = self.outbox.notifiers.taking(MessageKind.GROUP, per_channel=True)
        return {c: models for c, models in channels.items()
                if any(self.store.outbox.has_key(s, name, f"group:{group_id}:{c}") for name in chat)}

    def _channels(self, members: list[GroupMemberRow], severity: str) -> dict[str, list[str]]:
        """channel -> the members routed to it at `severity` (whose on-call it mentions)."""
        out: dict[str, list[str]] = {}
        sev = Severity(severity)
        for mem in members:
            try:
                m = self.config.model(mem.model)
            except KeyError:
                continue
            for c in routes_of(m).channels(sev):
                out.setdefault(c, []).append(mem.model)
        return out

    @staticmethod
    def _payload(group: AlertGroupRow, members: list[GroupMemberRow], step: GroupStep, t: float,
                 muted: set[str] | frozenset[str], severity: str) -> dict[str, Any]:
        return {"group_id": group.id, "cause_kind": group.cause_kind, "cause": group.cause,
                "severity": severity, "status": "resolved" if step == GroupStep.RESOLVED else "open",
                "change": str(step), "opened_at": group.created_at, "at": t,
                "models": [{"model": m.model, "incident_id": m.incident_id, "severity": m.severity,
                            "open": m.open, "muted": m.model in muted, **m.summary} for m in members]}


def _change(step: GroupStep, before: str | None, now: str) -> str | None:
    if step == GroupStep.RESOLVED:
        return "resolved"
    if before == "warning" and now == "critical" and step in (GroupStep.CHANGED, GroupStep.REPEAT):
        return "escalated"
    if step == GroupStep.REPEAT:
        return "repeated"  # repeat_interval reminds people: an edit alone notifies no one
    return None


def _told_by_group(s: Session, members: list[GroupMemberRow], severity: str, told_at: float) -> None:
    """A member told alone before (its own page) whose escalation this page told: the
    severity told is now its own, and its reminder counts from the group's last page that
    told someone (`told_at`). Left at its own page, the member said "escalated" a second
    time, or "still critical" within repeat_interval of the group's page, @-mentioning the
    on-call, once it left the group and paged as itself. A member never told alone has
    nothing to catch up: its group's page is its whole story."""
    for m in members:
        row = s.get(IncidentRow, m.incident_id) if m.open else None
        if row is None or row.notified_digest is None:
            continue
        own = Severity(row.severity)
        if last_told(row.notified_digest, row.severity).rank < own.rank <= Severity(severity).rank:
            row.notified_digest = told_digest(split_told(row.notified_digest)[0] or "", row.severity)
            row.last_notified_at = max(row.last_notified_at or told_at, told_at)


def _all_acknowledged(s: Session, members: list[GroupMemberRow]) -> bool:
    """Every open member's incident is acknowledged: someone took each of them, so the
    shared cause's repeat edits its message but @-mentions no one (as an incident's repeat)."""
    rows = [s.get(IncidentRow, m.incident_id) for m in members if m.open]
    return bool(rows) and all(r is not None and r.acknowledged_by is not None for r in rows)


def _summary(row: IncidentRow) -> dict[str, Any]:
    """What the group message shows of a member: its title, top cause and evidence."""
    top = (row.causes or [{}])[0]
    findings = [{"kind": f.get("kind"), "entity": f.get("entity"), "value": f.get("value"),
                 "threshold": f.get("threshold"), "message": f.get("message", ""),
                 # its number may be a missing store's share: the group's page says so as the model's own does
                 **({"partial": why} if (why := partial_read(f)) else {})} for f in (row.findings or [])[:5]]
    return {"title": row.title, "cause_explanation": top.get("explanation", ""),
            "cause_evidence": top.get("evidence", {}), "findings": findings,
            "evidence": evidence_key(row.findings or [], row.causes[0] if row.causes else None)}
