"""The alert chain's rule for a clock that went backwards (issue 11, row 7), pure: a cycle
earlier than the latest time the model's history holds decides nothing."""
from __future__ import annotations

from alerts.lifecycle import OpenIncident, Step, clock_went_back
from alerts.pipeline import AlertInputs, AlertPlan, ModelHistory, lifecycle_stage, plan_alerts
from alerts.policy import Severity
from tests.unit.alerts.test_pipeline import RULES, T, incident

OPEN_CRITICAL = OpenIncident(Severity.CRITICAL, "d0", T - 600, None, False)


def test_only_a_time_before_the_history_counts_as_going_back() -> None:
    assert clock_went_back(T - 1, T)
    assert not clock_went_back(T, T), "a cycle re-run at the same time is not a jump"
    assert not clock_went_back(T, None), "no history yet: nothing to go back from"


def test_a_quiet_cycle_two_hours_back_does_not_resolve_the_open_incident() -> None:
    history = ModelHistory(open_incident=OPEN_CRITICAL, quiet_cycles=1, latest_at=T + 7200)
    plan = plan_alerts(AlertInputs(None, None, history, True, T), RULES)
    assert plan.lifecycle.step == Step.HELD and plan.lifecycle.severity == Severity.CRITICAL
    assert not plan.lifecycle.notify and plan.channels == []
    assert plan.lifecycle.quiet_cycles == 1, "the quiet-cycle count neither grows nor resets"
    assert "clock went backwards" in plan.lifecycle.note and "7200 s before" in plan.lifecycle.note


def test_a_cycle_back_in_time_opens_nothing_and_rolls_nothing_back() -> None:
    """Nothing open, a deploy-blamed KPI drop (critical, rollback-worthy) seen from the past."""
    history = ModelHistory(latest_at=T + 60)
    plan = plan_alerts(AlertInputs(incident(), incident(), history, True, T), RULES)
    assert plan.tier is not None and plan.tier.severity == Severity.CRITICAL, "detection still runs"
    assert plan.lifecycle.step == Step.HELD and plan.lifecycle.severity is None
    assert plan.rollback is None and plan.channels == []


def test_a_cycle_at_or_after_the_history_decides_as_before() -> None:
    history = ModelHistory(open_incident=OPEN_CRITICAL, quiet_cycles=1, latest_at=T)
    inp = AlertInputs(None, None, history, True, T)
    plan = lifecycle_stage(inp, RULES, AlertPlan())
    assert plan.lifecycle.step == Step.RESOLVE  # the second quiet cycle (RULES resolve after 2)
