"""When the challenger is pulled, beside a failed KPI or SLO, and whether the pull is under way.

A `performance_drop` of the challenger's version measured on realised labels is what makes
the cycle's incident critical (alerts/policy.py): grounds to pull it, as a failed KPI is,
through the same durable intent. An estimated drop (CBPE, labels not in yet) is a warning:
it only holds promotion (monitor/cycle/canary_blame.py `performance_hold`).
"""
from __future__ import annotations

from collections.abc import Sequence

from alerts.rollback import ActionStatus, RollbackOutcome
from detectors.records import Finding, FindingKind


def _drops_of(findings: Sequence[Finding], challenger: str, label_value: str) -> list[Finding]:
    return [f for f in findings if f.kind == FindingKind.PERFORMANCE_DROP
            and str(f.evidence.get("version")) in (challenger, label_value)]


def accuracy_pull_cause(findings: Sequence[Finding], challenger: str, label_value: str) -> str:
    """Why the challenger is pulled on its own labels ("" when it is not): its worst realised drop."""
    realised = [f for f in _drops_of(findings, challenger, label_value) if f.evidence.get("basis") == "realised"]
    if not realised:
        return ""
    worst = max(realised, key=lambda f: abs(f.value))
    return f"its own {worst.message}"


def under_way(outcome: RollbackOutcome) -> bool:
    """Done, or pending on its own intent. Another action of the model in flight (the
    champion's rollback) answers "pending" too: then nothing was asked, and the next
    verdict asks again."""
    if outcome.status == ActionStatus.PENDING:
        return outcome.own
    return outcome.status in (ActionStatus.DONE, ActionStatus.NOOP)
