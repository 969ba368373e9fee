"""When the challenger is pulled, beside a failed KPI or SLO, and whether the pull is under way.

A `performance_drop` of the challenger's version measured on realised labels is what makes
the cycle's incident critical (alerts/policy.py): grounds to pull it, as a failed KPI is,
through the same durable intent. An estimated drop (CBPE, labels not in yet) is a warning:
it only holds promotion (monitor/cycle/canary_blame.py `performance_hold`).

A drop measured on predictions made before the version's latest pull is no ground to pull
it again: a person who set it on the alias again (serving fixed, say) starts a new canary,
and the window that pulled it stays in the performance horizon for up to a day. It still
holds promotion. The version's windows that start once the pull is done (its serving
layer pinned to the champion: no prediction of it since) pull it, once labelled.
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from alerts.rollback import ActionStatus, RollbackOutcome
from detectors.records import Finding, FindingKind
from monitor.store.canary import pulled_at
from monitor.store.repository import Store


def _drops_of(findings: Sequence[Finding], challenger: str, label_value: str) -> list[Finding]:
    return [f for f in findings if f.kind == FindingKind.PERFORMANCE_DROP
            and str(f.evidence.get("version")) in (challenger, label_value)]


def _realised(findings: Sequence[Finding], challenger: str, label_value: str) -> list[Finding]:
    return [f for f in _drops_of(findings, challenger, label_value) if f.evidence.get("basis") == "realised"]


def accuracy_pull_cause(findings: Sequence[Finding], challenger: str, label_value: str,
                        since: float | None = None) -> str:
    """Why the challenger is pulled on its own labels ("" when it is not): its worst realised
    drop in a window starting at or after `since` (its latest pull done; None: any)."""
    realised = [f for f in _realised(findings, challenger, label_value) if since is None or f.window_start >= since]
    if not realised:
        return ""
    worst = max(realised, key=lambda f: abs(f.value))
    return f"its own {worst.message}"


def accuracy_grounds(store: Store, model: str, findings: Sequence[Finding], challenger: str, label_value: str,
                     held: str) -> tuple[str, str]:
    """(why the challenger is pulled on its own labels or "", `held` as the run says it): a
    drop measured before its latest pull holds it, saying so, and pulls nothing."""
    if not _realised(findings, challenger, label_value):
        return "", held
    with store.tx() as s:
        since = pulled_at(s, model, challenger)
    cause = accuracy_pull_cause(findings, challenger, label_value, since)
    if cause or since is None or not held:
        return cause, held
    when = datetime.fromtimestamp(since, UTC).strftime("%Y-%m-%d %H:%M UTC")
    return "", (f"{held} (measured on its predictions before its pull at {when}: no ground to pull it again; "
                "its windows from then on are, once labelled)")


def under_way(outcome: RollbackOutcome) -> bool:
    """Done, or pending on its own intent. Another action of the model in flight (the
    champion's rollback) answers "pending" too: then nothing was asked, and the next
    verdict asks again."""
    if outcome.status == ActionStatus.PENDING:
        return outcome.own
    return outcome.status in (ActionStatus.DONE, ActionStatus.NOOP)
