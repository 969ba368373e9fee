"""Open, update, escalate, repeat, quiet, resolve, silence."""
from __future__ import annotations

from alerts.lifecycle import LifecycleSettings, OpenIncident, Step, decide, is_muted
from alerts.policy import Severity, TierDecision

S = LifecycleSettings(resolve_after_cycles=2, repeat_interval=3600)
WARN = TierDecision(Severity.WARNING, ["x"], False)
CRIT = TierDecision(Severity.CRITICAL, ["x"], False)
T = 1_800_000_000.0


def open_(sev=Severity.WARNING, digest="d1", notified=T - 60, silenced=None, acked=False):
    return OpenIncident(sev, digest, notified, silenced, acked)


def go(inc, tier, *, digest="d1", quiet=0, complete=True, now=T):
    """The silence stage, then the lifecycle stage, as the alert chain runs them."""
    return decide(inc, tier, digest=digest, quiet_cycles=quiet, data_complete=complete, now=now, settings=S,
                  muted=is_muted(inc, tier, now))


def test_nothing_open_and_nothing_wrong():
    d = go(None, None)
    assert d.step == Step.NONE and not d.notify


def test_first_alert_opens_and_notifies():
    d = go(None, WARN)
    assert d.step == Step.OPEN and d.notify and d.severity == Severity.WARNING


def test_pending_slo_does_not_open():
    assert go(None, TierDecision(None, ["pending"], False)).step == Step.NONE


def test_same_content_does_not_renotify():
    d = go(open_(), WARN)
    assert d.step == Step.UNCHANGED and not d.notify


def test_changed_content_updates_in_place():
    d = go(open_(), WARN, digest="d2")
    assert d.step == Step.UPDATE and d.notify


def test_escalation_notifies_even_when_silenced():
    d = go(open_(silenced=T + 3600), CRIT, digest="d2")
    assert d.step == Step.UPDATE and d.severity == Severity.CRITICAL and d.notify


def test_severity_never_drops_while_open():
    d = go(open_(Severity.CRITICAL), WARN, digest="d2")
    assert d.severity == Severity.CRITICAL


def test_repeat_after_interval_unless_acknowledged():
    assert go(open_(notified=T - 4000), WARN).step == Step.REPEAT
    assert go(open_(notified=T - 4000, acked=True), WARN).step == Step.UNCHANGED


def test_silence_mutes_changes():
    d = go(open_(silenced=T + 60), WARN, digest="d2")
    assert d.step == Step.UPDATE and not d.notify


def test_resolves_after_n_quiet_cycles():
    d1 = go(open_(), None)
    assert d1.step == Step.QUIET and d1.quiet_cycles == 1
    d2 = go(open_(), None, quiet=1)
    assert d2.step == Step.RESOLVE and d2.notify


def test_missing_data_never_counts_as_quiet():
    d = go(open_(), None, quiet=1, complete=False)
    assert d.step == Step.QUIET and d.quiet_cycles == 1  # not resolved, counter not advanced


def test_an_alert_resets_the_quiet_count():
    assert go(open_(), WARN, quiet=1).quiet_cycles == 0


def test_an_escalation_made_while_muted_is_told_as_one_when_the_mute_ends():
    from dataclasses import replace

    from alerts.lifecycle import split_told, told_digest

    muted = decide(open_(), CRIT, digest="d2", quiet_cycles=0, data_complete=True, now=T, settings=S, muted=True)
    assert muted.step == Step.UPDATE and not muted.notify
    # stored: severity critical, but people were told the warning (digest d1)
    after = replace(open_(Severity.CRITICAL), told_severity=Severity.WARNING)
    d = go(after, CRIT, digest="d2", now=T + 120)
    assert d.step == Step.UPDATE and d.notify and d.note == "escalated"
    assert split_told(told_digest("d2", "critical")) == ("d2", Severity.CRITICAL)
    assert split_told("d1") == ("d1", None)  # stored by an older Vigil


def test_an_escalation_held_by_a_maintenance_window_still_gets_through_the_incidents_own_silence():
    """Told as a warning and silenced for the night (the incident's own silence, which lets
    an escalation through), it turns critical inside a maintenance window: once the window
    ends, the escalation nobody was told of pages, not held until the night's silence ends."""
    from dataclasses import replace

    after = replace(open_(Severity.CRITICAL, silenced=T + 8 * 3600), told_severity=Severity.WARNING)
    d = go(after, CRIT, digest="d2", now=T + 120)
    assert d.step == Step.UPDATE and d.notify and d.note == "escalated"
    told = replace(open_(Severity.CRITICAL, silenced=T + 8 * 3600), told_severity=Severity.CRITICAL)
    assert not go(told, CRIT, digest="d2", now=T + 120).notify  # a told critical stays silenced


def test_an_untold_escalation_gets_through_an_incident_silence_in_a_cycle_that_reads_only_a_warning():
    """Told of a warning, silenced at it; the incident turned critical under a maintenance
    window (never told). Once the window ends, the escalation gets through the silence even
    when this cycle's own findings only make a warning: the incident is critical (severity
    never drops while open), and the silence covers the warning it was made at."""
    inc = OpenIncident(Severity.CRITICAL, "d1", T - 600, T + 3600, False, told_severity=Severity.WARNING)
    assert not is_muted(inc, WARN, T)
    d = go(inc, WARN)
    assert (d.step, d.severity, d.notify, d.note) == (Step.UPDATE, Severity.CRITICAL, True, "escalated")
    told = OpenIncident(Severity.CRITICAL, "d1", T - 600, T + 3600, False, told_severity=Severity.CRITICAL)
    assert is_muted(told, WARN, T) and is_muted(told, CRIT, T)  # told already: the silence holds


def test_a_pending_slo_breach_of_an_open_incident_is_not_a_quiet_cycle():
    """The incident is open; its SLO is breached again, for fewer cycles than it takes to
    alert on (pending, as Prometheus' `for:`). Something is wrong: the cycle must not count
    towards resolving it, or the on-call is told "resolved" while the SLO is breached and paged
    again by a new incident as soon as the breach has lasted long enough."""
    pending = TierDecision(None, ["pending: SLO p99 breached"], False)
    d = go(open_(Severity.CRITICAL), pending, quiet=1)
    assert d.step != Step.RESOLVE and not d.notify, d
    assert d.quiet_cycles == 0, "a cycle with something wrong restarts the count of quiet ones"
    assert go(open_(Severity.CRITICAL), None, quiet=1).step == Step.RESOLVE  # nothing wrong: resolves
