"""Whether a passing challenger may be promoted on its own: not while an open or recent
incident blames it (its deploy suspected, its canary failed) or a rollback moved away from
it (`policy.rollback.blame_window`), the same blame a rollback target is chosen by
(monitor/cycle/known_good.py). A person may still promote it through the rollback API,
with force and a reason."""
from __future__ import annotations

from collections.abc import Sequence

from detectors.records import Finding
from monitor.config import ModelConfig, RollbackPolicy
from monitor.cycle.canary_pull import drops_of
from monitor.cycle.known_good import target_facts
from monitor.store.audit_log import retry_audited
from monitor.store.canary import run_row
from monitor.store.repository import Store


def promotion_blame(store: Store, m: ModelConfig, challenger: str, rules: RollbackPolicy, t: float) -> str | None:
    """Why `challenger` is blamed (None: it may be promoted). A refusal is recorded on the
    run and audited (`canary.promotion_refused`) once per reason, not every cycle."""
    why = target_facts(store, m.name, rules, t).blamed.get(challenger)
    words = f"not promoted on its own: v{challenger} is blamed"
    if why is None:  # a refusal whose blame is over no longer says so (a suggested run is left as it is)
        with store.tx() as s:
            run = run_row(s, m.name, challenger, t)
            run.detail = "" if run.detail.startswith(words) else run.detail
        return None
    detail = f"{words} ({why})"

    def once() -> None:
        with store.tx() as s:
            run = run_row(s, m.name, challenger, t)
            if run.detail == detail:
                return
            run.detail, run.updated_at = detail, t
            store.audit_in(s, "vigil", "canary.promotion_refused", f"model:{m.name}",
                           {"challenger_version": challenger, "reason": why}, now=t)

    retry_audited(once, "record a refused promotion")
    return why


def performance_hold(findings: Sequence[Finding], challenger: str, label_value: str) -> str:
    """Why this cycle's pass is no step towards a promotion ("" when it is): the challenger's
    own labelled predictions (or their estimate) show a performance drop. Its KPIs passing
    against the champion's, a challenger at -40 % realised accuracy was auto-promoted while
    the same cycle's incident said so. Not a fail: the champion may be dropping alike."""
    drops = drops_of(findings, challenger, label_value)
    if not drops:
        return ""
    worst = min(drops, key=lambda f: -abs(f.value))
    return f"{_held_words(challenger)}: {worst.message}"


def _held_words(challenger: str) -> str:
    return f"not promoted: v{challenger}'s own performance dropped"


def detail_after_hold(held: str, detail: str, challenger: str) -> str:
    """The run's detail after this cycle's `performance_hold`: the hold while it lasts, and
    once it is over not left saying "not promoted" while the passes count again."""
    if held:
        return held
    return "" if detail.startswith(_held_words(challenger)) else detail
