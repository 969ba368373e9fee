"""Which version a rollback goes back to: versions that served cleanly (counted cycle by
cycle in the cycle's apply transaction, monitor/cycle/apply.py) and versions incidents
blame (read from incidents and earlier rollbacks).
The choice itself is pure: alerts/rollback.py `choose_target`."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from sqlalchemy import or_, select

from alerts.lifecycle import IncidentStatus
from alerts.rollback import TargetFacts, blamed_versions
from monitor.config import RollbackPolicy
from monitor.store import intents
from monitor.store.repository import IncidentRow, Store


def target_facts(store: Store, model: str, rules: RollbackPolicy, now: float) -> TargetFacts:
    since = now - rules.blame_window
    with store.tx() as s:
        serving = store.model_state(s, model).alias_version
        rows = s.scalars(select(IncidentRow).where(
            IncidentRow.model == model,
            or_(IncidentRow.status == IncidentStatus.OPEN, IncidentRow.opened_at >= since)))
        blamed = blamed_versions([(r.id, list(r.causes or [])) for r in rows],
                                 intents.rolled_back_from(s, model, since))
        good = intents.known_good(s, model, rules.known_good_after_cycles)
    return TargetFacts(serving=serving, known_good=good, blamed=blamed,
                       deploy_previous=store.rollback_target(model))


def without_deleted(facts: TargetFacts, exists: Callable[[str], bool]) -> TargetFacts:
    """The facts without the candidates the registry no longer holds (a deleted version:
    moving the alias to it fails, and the next candidate was never tried). Asked in
    `choose_target`'s order and only until one is there, so a long history costs one read;
    `exists` says True when it cannot tell (the rollback reports an unreachable registry)."""
    gone: list[str] = []
    for v in dict.fromkeys([*facts.known_good, *([facts.deploy_previous] if facts.deploy_previous else [])]):
        if v == facts.serving or v in facts.blamed:
            continue  # never a new target: nothing to ask
        if exists(v):
            break
        gone.append(v)
    if not gone:
        return facts
    return replace(facts, known_good=[v for v in facts.known_good if v not in gone],
                   deploy_previous=None if facts.deploy_previous in gone else facts.deploy_previous,
                   gone=tuple(gone))
