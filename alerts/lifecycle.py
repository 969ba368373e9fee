"""Alert lifecycle: open, update, repeat, resolve — decided purely from state and inputs.

One open incident per model (its fingerprint is the model): findings of a model in a
window are one incident, and later windows update it in place rather than filing new
ones. Severity only escalates while an incident is open; it resolves after
`resolve_after_cycles` cycles with data and nothing wrong. A cycle with missing data
never counts as quiet: blindness is not an all-clear; nor does one with a breach still pending
(an SLO breached for fewer cycles than it takes to alert on). A cycle whose time is earlier than
the latest time the model's history holds (the clock went backwards) decides nothing:
it would resolve an incident before it opened, or open a second one for the episode.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from alerts.policy import Severity, TierDecision


class IncidentStatus(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


class Step(StrEnum):
    NONE = "none"  # nothing open, nothing to open
    OPEN = "open"
    UPDATE = "update"  # the content changed (or escalated): notify
    UNCHANGED = "unchanged"  # still open, nothing new
    REPEAT = "repeat"  # unchanged but repeat_interval elapsed: remind
    QUIET = "quiet"  # open, no findings this cycle, not yet resolved
    RESOLVE = "resolve"
    HELD = "held"  # the clock went backwards: nothing opened, escalated, repeated or resolved
    # the incident planned for was resolved by someone else before the cycle wrote (monitor/cycle/apply.py)
    RESOLVED_ELSEWHERE = "resolved_elsewhere"


@dataclass(frozen=True)
class LifecycleSettings:
    resolve_after_cycles: int = 2
    repeat_interval: float = 4 * 3600.0


@dataclass(frozen=True)
class OpenIncident:
    """What the lifecycle needs to know about the model's open incident."""

    severity: Severity
    digest: str | None  # digest of what was last notified
    last_notified_at: float | None
    silenced_until: float | None
    acknowledged: bool
    # The severity people were last told of (None: as `severity`). It lags `severity` when
    # the incident escalated while muted: the escalation is still to be told.
    told_severity: Severity | None = None


class LifecycleConflict(Exception):
    """A person's action that the incident's state does not allow (ack or silence a resolved one)."""


def check_actionable(status: str, incident_id: int, action: str) -> None:
    """Ack and silence are for open incidents: on a resolved one they would change nothing
    anyone sees, so they are refused (the API answers 409) rather than recorded as done."""
    if status != IncidentStatus.OPEN:
        raise LifecycleConflict(f"incident {incident_id} is {status}: only an open incident can be {action}")


@dataclass(frozen=True)
class LifecycleDecision:
    step: Step
    severity: Severity | None
    notify: bool  # send (or update) the incident message
    quiet_cycles: int  # new value of the model's quiet-cycle counter
    note: str = ""


def decide(
    open_incident: OpenIncident | None,
    tier: TierDecision | None,
    *,
    digest: str | None,
    quiet_cycles: int,
    data_complete: bool,
    now: float,
    settings: LifecycleSettings,
    muted: bool = False,
) -> LifecycleDecision:
    """`tier` is None (or tier.severity None) when this cycle has nothing to alert on;
    `muted` (from the silence stage) holds back messages but never the incident's state."""
    alerting = tier is not None and tier.severity is not None
    if open_incident is None:
        if not alerting:
            return LifecycleDecision(Step.NONE, None, False, 0)
        assert tier is not None and tier.severity is not None
        return LifecycleDecision(Step.OPEN, tier.severity, not muted, 0, "muted" if muted else "")

    if not alerting:
        if not data_complete:
            return LifecycleDecision(Step.QUIET, open_incident.severity, False, quiet_cycles,
                                     "data missing: quiet cycle not counted")
        if tier is not None and tier.pending:
            # An SLO breached again, not yet for long enough to alert on: not quiet. Counted,
            # it resolved the incident while the SLO was breached, and a new one paged again
            # as soon as the streak was long enough.
            return LifecycleDecision(Step.QUIET, open_incident.severity, False, 0, "breach pending: not quiet")
        quiet = quiet_cycles + 1
        if quiet >= settings.resolve_after_cycles:
            # Whoever was told it opened is told it resolved, silence or not (an edit and a
            # thread reply, not a page); one nobody was told of resolves quietly.
            told = open_incident.last_notified_at is not None
            return LifecycleDecision(Step.RESOLVE, open_incident.severity, told, 0)
        return LifecycleDecision(Step.QUIET, open_incident.severity, False, quiet)

    assert tier is not None and tier.severity is not None
    severity = max(open_incident.severity, tier.severity, key=lambda s: s.rank)
    # Against what people were told: an escalation under a silence is told as one when it ends.
    escalated = severity.rank > (open_incident.told_severity or open_incident.severity).rank
    changed = digest != open_incident.digest
    if escalated or changed:
        return LifecycleDecision(Step.UPDATE, severity, not muted, 0,
                                 "escalated" if escalated else "changed")
    due = (open_incident.last_notified_at is not None
           and now - open_incident.last_notified_at >= settings.repeat_interval)
    if due and not open_incident.acknowledged and not muted:
        return LifecycleDecision(Step.REPEAT, severity, True, 0)
    return LifecycleDecision(Step.UNCHANGED, severity, False, 0)


def told_digest(digest: str, severity: str) -> str:
    """What `incidents.notified_digest` stores: the digest told and the severity it was
    told at (`critical:<digest>`), so an escalation made while muted is told later."""
    return f"{severity}:{digest}"


def split_told(stored: str | None) -> tuple[str | None, Severity | None]:
    """`told_digest` read back: (digest, severity told); a bare digest (stored by an older
    Vigil) has no severity."""
    sev, sep, digest = (stored or "").partition(":")
    if sep and sev in {s.value for s in Severity}:
        return digest, Severity(sev)
    return stored, None


def last_told(notified_digest: str | None, severity: str) -> Severity:
    """The severity people were last told of an incident: the one stored with its digest, else
    (a digest from an older Vigil, or nothing told) the incident's own."""
    return split_told(notified_digest)[1] or Severity(severity)


def clock_went_back(now: float, latest: float | None) -> bool:
    """True when `now` is earlier than the latest time the model's history already holds."""
    return latest is not None and now < latest


def hold(open_incident: OpenIncident | None, quiet_cycles: int, now: float, latest: float) -> LifecycleDecision:
    """The decision of a cycle whose clock went backwards: everything stays as it was.

    Time only moves forward in an incident's life (opened <= updated <= resolved), and an
    episode already decided on must not be decided again from an older view of the data,
    so the cycle may detect but changes no state and sends nothing until time catches up.
    """
    return LifecycleDecision(Step.HELD, open_incident.severity if open_incident else None, False, quiet_cycles,
                             f"clock went backwards: t={now:.0f} is {latest - now:.0f} s before the latest "
                             f"recorded time {latest:.0f}; lifecycle held")


def is_muted(open_incident: OpenIncident | None, tier: TierDecision | None, now: float) -> bool:
    """A silence holds back messages until it ends, except an escalation: a warning
    silenced for the night still pages when it turns critical."""
    if open_incident is None or open_incident.silenced_until is None or now >= open_incident.silenced_until:
        return False
    # Against the severity told: one reached under another mute (a maintenance window) and
    # never told is still an escalation when that mute ends, and gets through this one.
    # The incident's own severity counts as this cycle's: it never drops while open, so an
    # escalation still untold gets through in a cycle whose findings alone make only a warning.
    if tier is None or tier.severity is None:
        return True
    told = open_incident.told_severity or open_incident.severity
    return max(open_incident.severity.rank, tier.severity.rank) <= told.rank
