"""Inhibition (Alertmanager's source/target/equal) with Vigil's defaults, and the timing
of one page for a shared cause (group_wait, group_interval, repeat_interval)."""
from __future__ import annotations

from alerts.grouping import GroupSettings, GroupState, GroupStep, Member, decide_group, group_digest, group_key
from alerts.inhibition import DEFAULT_RULES, InhibitRule, inhibitor
from alerts.labels import incident_labels, shared_cause_labels, source_down_labels
from alerts.matchers import parse_matcher


def no_data_from(model: str, source: str) -> dict:
    return incident_labels(model, "warning", [{"kind": "no_data", "entity": "ctr", "evidence": {"source": source}}],
                           [])


def gpu_incident(model: str, severity: str = "warning") -> dict:
    return incident_labels(model, severity, [{"kind": "gpu_saturation", "entity": "gpu-node-1/gpu 0"}],
                           [{"kind": "gpu_saturation", "entity": "gpu-node-1/gpu 0"}])


def test_a_source_outage_inhibits_each_models_no_data_from_that_source_only():
    a, b = no_data_from("a", "prometheus"), no_data_from("b", "loki")
    assert (a["cause_kind"], a["cause"]) == ("source_unavailable", "prometheus")  # the outage is the cause
    outage = shared_cause_labels("source_unavailable", "prometheus", ["a", "c"], "warning")
    inh = inhibitor(a, [outage], DEFAULT_RULES)
    assert inh is not None and "source outage" in inh.describe()
    assert inhibitor(b, [outage], DEFAULT_RULES) is None
    # an incident with a real finding besides its no-data is not hidden by the outage
    mixed = incident_labels("a", "warning", [{"kind": "no_data", "entity": "x", "evidence": {"source": "prometheus"}},
                                             {"kind": "kpi_drop", "entity": "ctr"}], [])
    assert inhibitor(mixed, [outage], DEFAULT_RULES) is None
    assert inhibitor(a, [source_down_labels("prometheus")], DEFAULT_RULES) is None  # only a page that fires


def test_a_critical_inhibits_the_same_models_warning_not_anothers():
    warn, crit = gpu_incident("a"), {"alertname": "Other", "model": "a", "severity": "critical"}
    assert inhibitor(warn, [crit], DEFAULT_RULES) is not None
    assert inhibitor(gpu_incident("b"), [crit], DEFAULT_RULES) is None


def test_a_shared_cause_inhibits_its_members_own_pages():
    group = shared_cause_labels("gpu_saturation", "gpu-node-1/gpu 0", ["a", "b"], "warning")
    inh = inhibitor(gpu_incident("a"), [group], DEFAULT_RULES)
    assert inh is not None and "shared cause" in inh.describe()
    other = incident_labels("c", "warning", [], [{"kind": "gpu_saturation", "entity": "gpu-node-2/gpu 0"}])
    assert inhibitor(other, [group], DEFAULT_RULES) is None


def test_an_alert_never_inhibits_itself_and_custom_rules_apply():
    a = gpu_incident("a", "critical")
    rule = InhibitRule((parse_matcher('severity="critical"'),), (parse_matcher('severity="critical"'),), ("model",))
    assert inhibitor(a, [a], [rule]) is None


def test_two_alerts_on_both_sides_of_a_rule_never_inhibit_each_other_as_in_alertmanager():
    """A rule whose source also matches its target (`severity="critical"` hides the team's
    other incidents): two critical incidents of one team each inhibited the other, and
    neither paged anyone. Alertmanager leaves out, for an alert on both sides, the sources
    that are on both sides too; a warning of the team is still inhibited."""
    rule = InhibitRule((parse_matcher('alertname="ModelIncident"'), parse_matcher('severity="critical"')),
                       (parse_matcher('alertname="ModelIncident"'),), ("team",))
    a, b = ({**gpu_incident(m, "critical"), "team": "recsys"} for m in ("a", "b"))
    assert inhibitor(a, [b], [rule]) is None and inhibitor(b, [a], [rule]) is None
    c = {**gpu_incident("c", "warning"), "team": "recsys"}
    assert inhibitor(c, [a, b], [rule]) is not None


S = GroupSettings()
T = 1_000_000.0


def state(*members: Member, created: float = T, notified: float | None = None, digest: str | None = None
          ) -> GroupState:
    return GroupState(created, notified, digest, members)


def test_group_key_from_the_top_cause_only_for_groupable_kinds():
    assert group_key(gpu_incident("a"), S) == group_key(gpu_incident("b"), S) is not None
    assert group_key(no_data_from("a", "prometheus"), S) == group_key(no_data_from("b", "prometheus"), S)
    assert group_key(incident_labels("a", "warning", [{"kind": "kpi_drop", "entity": "ctr"}], []), S) is None
    assert group_key(gpu_incident("a"), GroupSettings(enabled=False)) is None


def test_alertmanagers_default_timings():
    assert (S.group_wait, S.group_interval, S.repeat_interval) == (30.0, 300.0, 4 * 3600.0)


def test_group_waits_then_pages_once_for_two_models():
    a, b = Member("a", "warning", True), Member("b", "warning", True)
    assert decide_group(state(a), T + 10, S).step == GroupStep.WAIT  # members' own pages held
    first = decide_group(state(a, b), T + 30, S)
    assert first.step == GroupStep.FIRST and first.firing and first.notify
    again = decide_group(state(a, b, notified=T + 30, digest=first.digest), T + 90, S)
    assert again.step == GroupStep.NONE and again.firing


def test_a_lone_member_pages_as_itself_after_the_wait():
    d = decide_group(state(Member("a", "warning", True)), T + 31, S)
    assert d.step == GroupStep.NONE and not d.firing and not d.holds_members


def test_changes_wait_for_group_interval_and_repeat_after_repeat_interval():
    a, b = Member("a", "warning", True), Member("b", "warning", True)
    d0 = group_digest([a, b])
    escalated = (a, Member("b", "critical", True))
    assert decide_group(state(*escalated, notified=T, digest=d0), T + 299, S).step == GroupStep.NONE
    assert decide_group(state(*escalated, notified=T, digest=d0), T + 300, S).step == GroupStep.CHANGED
    assert decide_group(state(a, b, notified=T, digest=d0), T + 4 * 3600, S).step == GroupStep.REPEAT


def test_group_resolves_when_its_last_member_does_and_keeps_speaking_for_one_left():
    a, b = Member("a", "warning", True), Member("b", "warning", False)
    d = decide_group(state(a, b, notified=T, digest="x"), T + 600, S)
    assert d.firing and d.step == GroupStep.CHANGED
    done = decide_group(state(Member("a", "warning", False), b, notified=T, digest="x"), T + 700, S)
    assert done.step == GroupStep.RESOLVED and done.notify and not done.firing


def test_with_group_by_team_the_defaults_inhibit_only_the_same_teams_models():
    from alerts.inhibition import default_rules

    rules = default_rules(("cause_kind", "cause", "team"))
    search_outage = {**shared_cause_labels("source_unavailable", "prometheus", ["b", "c"], "warning"),
                     "team": "search"}
    recsys_blind = {**no_data_from("a", "prometheus"), "team": "recsys"}
    assert inhibitor(recsys_blind, [search_outage], rules) is None, "blind, and told of it by no page"
    assert inhibitor({**no_data_from("b", "prometheus"), "team": "search"}, [search_outage], rules) is not None
    search_gpu = {**shared_cause_labels("gpu_saturation", "gpu-node-1/gpu 0", ["b", "c"], "warning"),
                  "team": "search"}
    assert inhibitor({**gpu_incident("a"), "team": "recsys"}, [search_gpu], rules) is None
    assert inhibitor({**gpu_incident("b"), "team": "search"}, [search_gpu], rules) is not None
